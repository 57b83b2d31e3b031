// Filter the checks table by status; nothing else needs script.
(function () {
  "use strict";
  var buttons = document.querySelectorAll(".filters button");
  var rows = document.querySelectorAll("tr[data-status]");
  function show(status) {
    for (var i = 0; i < rows.length; i++) {
      var hit = status === "all" || rows[i].getAttribute("data-status") === status;
      rows[i].style.display = hit ? "" : "none";
    }
    for (var j = 0; j < buttons.length; j++) {
      buttons[j].classList.toggle("on", buttons[j].getAttribute("data-show") === status);
    }
  }
  for (var k = 0; k < buttons.length; k++) {
    buttons[k].addEventListener("click", function (event) {
      show(event.currentTarget.getAttribute("data-show"));
    });
  }
  document.body.setAttribute("data-ready", "1");
})();
