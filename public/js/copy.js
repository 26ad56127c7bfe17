// Copy buttons: <button data-copy="#id"> copies the value of the element it names. Without
// JavaScript the button stays hidden and the field can be selected and copied by hand.
document.querySelectorAll('button[data-copy]').forEach(function (button) {
  var target = document.querySelector(button.getAttribute('data-copy'));
  if (!target || !navigator.clipboard) return;
  button.hidden = false;
  var label = button.textContent;
  button.addEventListener('click', function () {
    navigator.clipboard.writeText(target.value || target.textContent).then(function () {
      button.textContent = 'Copied';
      setTimeout(function () { button.textContent = label; }, 2000);
    }, function () {
      if (target.select) target.select();
      button.textContent = 'Press Ctrl+C to copy';
    });
  });
});
