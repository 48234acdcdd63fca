// The Settings tab's search box: only the settings whose label (or A1111 name) holds the typed words
// stay shown, and sections with none of them fold away.
(() => {
    const matches = (el, words) => {
        const text = `${el.innerText} ${el.id.replace(/^setting_/, "")}`.toLowerCase();
        return words.every((word) => text.includes(word));
    };

    document.addEventListener("input", (event) => {
        const box = event.target;
        if (!(box instanceof HTMLElement) || !box.closest("#settings_search")) return;
        const words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
        for (const section of document.querySelectorAll("[id^=settings_]")) {
            const settings = [...section.querySelectorAll("[id^=setting_]")];
            if (!settings.length) continue;
            let shown = 0;
            for (const setting of settings) {
                const show = matches(setting, words);
                setting.style.display = show ? "" : "none";
                shown += show;
            }
            section.style.display = shown ? "" : "none";
        }
    });
})();
