// The page title shows the running generation's progress ("[42%] Stable Diffusion"), as A1111, so a
// background tab tells how far it is; read from our progress display (webui/ui/progress.py). When a run
// ends while the page is in the background, a desktop notification says so if the setting
// "browser_notifications" is on (the browser asks for permission when the setting is switched on).
(() => {
    const SETTING = "#setting_browser_notifications input[type=checkbox]";
    let plainTitle = null;
    let running = false;

    const notify = () => {
        if (!document.querySelector(SETTING)?.checked || document.hasFocus()) return;
        if (!("Notification" in window) || Notification.permission !== "granted") return;
        const image = document.querySelector("[id$=_gallery] img");
        new Notification("Stable Diffusion", { body: "Generation finished", icon: image?.src });
    };

    document.addEventListener("change", (event) => {
        if (event.target instanceof Element && event.target.matches(SETTING) && event.target.checked) {
            if ("Notification" in window && Notification.permission === "default") Notification.requestPermission();
        }
    });

    setInterval(() => {
        if (plainTitle === null) plainTitle = document.title;
        const line = document.querySelector(".wui-progress-text");
        const percent = line?.textContent.match(/(\d+)%/);
        const wanted = percent ? `[${percent[1]}%] ${plainTitle}` : plainTitle;
        if (document.title !== wanted) document.title = wanted;
        if (running && !line) notify();
        running = Boolean(line);
    }, 500);
})();
