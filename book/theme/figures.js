// Every figure opens at full size on click: the image at its own pixel size over the page,
// scrollable when wider than the window; a click anywhere or Escape closes it.
(function () {
    "use strict";
    function close() {
        var open = document.querySelector(".figure-zoom");
        if (open) { open.remove(); }
    }
    document.addEventListener("click", function (e) {
        var img = e.target.closest("figure img");
        if (e.target.closest(".figure-zoom")) { close(); return; }
        if (!img) { return; }
        var layer = document.createElement("div");
        layer.className = "figure-zoom";
        layer.setAttribute("role", "dialog");
        layer.setAttribute("aria-label", img.alt || "figure at full size");
        var big = document.createElement("img");
        big.src = img.currentSrc || img.src;
        big.alt = img.alt;
        layer.appendChild(big);
        document.body.appendChild(layer);
    });
    document.addEventListener("keydown", function (e) {
        if (e.key === "Escape") { close(); }
    });
})();
