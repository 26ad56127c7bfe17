// Print buttons: <button data-print> opens the browser's print dialog. Without JavaScript the
// button stays hidden and the browser's own print command works.
document.querySelectorAll('button[data-print]').forEach(function (button) {
  button.hidden = false;
  button.addEventListener('click', function () { window.print(); });
});
