// Runs once in the page's <head>; marks the page so one can see (and the tests check) that it loaded.
(function () {
    function mark() {
        document.body.dataset.exampleWatermark = "loaded";
    }
    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", mark);
    } else {
        mark();
    }
})();
