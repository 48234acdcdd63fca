// Right-click on Generate (or on Interrupt, in its place during a run): "Generate forever" clicks Generate again each time a run ends, until
// "Cancel generate forever" (A1111's context menu entries).
(() => {
    const loops = {}; // tab name → interval id

    const closeMenu = () => document.getElementById("webui_context_menu")?.remove();

    const showMenu = (x, y, entries) => {
        closeMenu();
        const menu = document.createElement("div");
        menu.id = "webui_context_menu";
        menu.setAttribute("role", "menu");
        menu.style.left = `${x}px`;
        menu.style.top = `${y}px`;
        for (const [label, action] of entries) {
            const item = document.createElement("div");
            item.className = "webui-context-item";
            item.setAttribute("role", "menuitem");
            item.textContent = label;
            item.addEventListener("click", () => {
                closeMenu();
                action();
            });
            menu.appendChild(item);
        }
        document.body.appendChild(menu);
    };

    const start = (tab) => {
        if (loops[tab]) return;
        const button = () => document.getElementById(`${tab}_generate`);
        button()?.click();
        // Generate is hidden while a run goes (Interrupt/Skip take its place): click when it is back
        loops[tab] = setInterval(() => {
            const generate = button();
            if (generate && generate.offsetParent !== null) generate.click();
        }, 500);
    };

    const stop = (tab) => {
        clearInterval(loops[tab]);
        delete loops[tab];
    };

    document.addEventListener("contextmenu", (event) => {
        // Interrupt stands in for Generate while a run goes: it has the same menu
        const button = event.target instanceof Element && event.target.closest("[id$=_generate], [id$=_interrupt]");
        const tab = button?.id.replace(/_(generate|interrupt)$/, "");
        if (!tab) return;
        event.preventDefault();
        showMenu(event.clientX, event.clientY, [
            ["Generate forever", () => start(tab)],
            ["Cancel generate forever", () => stop(tab)],
        ]);
    });
    document.addEventListener("click", (event) => {
        // only a person's click elsewhere closes the menu: the loop's own Generate clicks (untrusted) must not
        // take it away while the user reaches for "Cancel generate forever"
        if (!event.isTrusted) return;
        if (!(event.target instanceof Element) || !event.target.closest("#webui_context_menu")) closeMenu();
    });
})();
