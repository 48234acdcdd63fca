// The Settings tab's search box: only the settings whose label (or A1111 name) holds the typed words
// stay shown, and sections with none of them fold away. "Show all pages" clears the search and unfolds
// every section.
(() => {
    const matches = (el, words) => {
        const text = `${el.innerText} ${el.id.replace(/^setting_/, "")}`.toLowerCase();
        return words.every((word) => text.includes(word));
    };

    const filter = (box) => {
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
    };

    document.addEventListener("input", (event) => {
        const box = event.target;
        if (box instanceof HTMLElement && box.closest("#settings_search")) filter(box);
    });

    document.addEventListener("click", (event) => {
        if (!(event.target instanceof Element) || !event.target.closest("#settings_show_all_pages")) return;
        const box = document.querySelector("#settings_search textarea, #settings_search input");
        if (box) {
            box.value = "";
            box.dispatchEvent(new Event("input", { bubbles: true }));
            filter(box);
        }
        for (const section of document.querySelectorAll("[id^=settings_]")) {
            if (!section.querySelector("[id^=setting_]")) continue;
            const toggle = section.querySelector("button.label-wrap:not(.open), .label-wrap:not(.open)");
            if (toggle) toggle.click();  // a folded section unfolds
        }
    });
})();
