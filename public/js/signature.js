// Drawn signatures: a canvas per [data-signature-pad]; each stroke updates the hidden field with a
// PNG data URL. Without JavaScript the typed signature field still works.
(function () {
  'use strict';
  document.querySelectorAll('[data-signature-pad]').forEach(function (pad) {
    var canvas = pad.querySelector('canvas');
    var field = pad.querySelector('input[type="hidden"]');
    var clear = pad.querySelector('[data-signature-clear]');
    if (!canvas || !field) return;
    pad.hidden = false;
    var ctx = canvas.getContext('2d');
    ctx.lineWidth = 3;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.strokeStyle = '#111';
    var drawing = false;
    function point(e) {
      var r = canvas.getBoundingClientRect();
      return { x: ((e.clientX - r.left) * canvas.width) / r.width, y: ((e.clientY - r.top) * canvas.height) / r.height };
    }
    canvas.addEventListener('pointerdown', function (e) {
      drawing = true;
      canvas.setPointerCapture(e.pointerId);
      var p = point(e);
      ctx.beginPath();
      ctx.moveTo(p.x, p.y);
      ctx.lineTo(p.x + 0.1, p.y + 0.1);
      ctx.stroke();
      e.preventDefault();
    });
    canvas.addEventListener('pointermove', function (e) {
      if (!drawing) return;
      var p = point(e);
      ctx.lineTo(p.x, p.y);
      ctx.stroke();
      e.preventDefault();
    });
    function end() {
      if (!drawing) return;
      drawing = false;
      field.value = canvas.toDataURL('image/png');
    }
    canvas.addEventListener('pointerup', end);
    canvas.addEventListener('pointercancel', end);
    if (clear) {
      clear.addEventListener('click', function () {
        ctx.clearRect(0, 0, canvas.width, canvas.height);
        field.value = '';
      });
    }
  });
})();
