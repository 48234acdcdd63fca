// The page title shows the running generation's progress ("[42%] Stable Diffusion"), as A1111, so a
// background tab tells how far it is; read from our progress display (webui/ui/progress.py).
(() => {
    let plainTitle = null;
    setInterval(() => {
        if (plainTitle === null) plainTitle = document.title;
        const line = document.querySelector(".wui-progress-text");
        const percent = line?.textContent.match(/(\d+)%/);
        const wanted = percent ? `[${percent[1]}%] ${plainTitle}` : plainTitle;
        if (document.title !== wanted) document.title = wanted;
    }, 500);
})();
