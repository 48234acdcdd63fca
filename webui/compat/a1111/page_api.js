// The page functions A1111 extensions' javascript calls (A1111 defines them in its script.js), for our
// page: gradioApp(), onUiLoaded / onUiUpdate / onAfterUiUpdate / onUiTabChange / onOptionsChanged
// registrations, get_uiCurrentTab(), get_uiCurrentTabContent(), uiElementIsVisible(). Added to the page
// head before the extensions' own scripts, only when an A1111 extension is loaded.
(function () {
    const registered = {loaded: [], update: [], afterUpdate: [], tabChange: [], optionsChanged: []};

    function run(list, argument) {
        for (const callback of list) {
            try {
                callback(argument);
            } catch (error) {
                console.error("A1111 extension callback failed:", error);
            }
        }
    }

    window.gradioApp = function () {
        const app = document.querySelector("gradio-app");
        if (!app) {
            return document;
        }
        if (!app.getElementById) {
            app.getElementById = (id) => document.getElementById(id);
        }
        return app.shadowRoot || app;
    };
    window.onUiLoaded = (callback) => registered.loaded.push(callback);
    window.onUiUpdate = (callback) => registered.update.push(callback);
    window.onAfterUiUpdate = (callback) => registered.afterUpdate.push(callback);
    window.onUiTabChange = (callback) => registered.tabChange.push(callback);
    window.onOptionsChanged = (callback) => registered.optionsChanged.push(callback);
    window.executeCallbacks = (list, argument) => run(list || [], argument);

    // The selected top-level tab's button, and its content (our tab ids are A1111's: txt2img, img2img…).
    window.get_uiCurrentTab = function () {
        return gradioApp().querySelector("#tabs > .tab-wrapper button[role=tab][aria-selected=true]")
            || gradioApp().querySelector("#tabs button[role=tab][aria-selected=true]");
    };
    window.get_uiCurrentTabContent = function () {
        const panels = gradioApp().querySelectorAll("#tabs > [role=tabpanel], #tabs > div > [role=tabpanel]");
        return Array.from(panels).find((panel) => panel.offsetParent !== null) || null;
    };
    window.uiElementIsVisible = (element) => Boolean(element && element.offsetParent !== null);

    let loaded = false;
    let afterTimer = null;
    let currentTab = null;
    function changed(mutations) {
        if (!loaded) {
            if (!gradioApp().querySelector("#txt2img_prompt")) {
                return;
            }
            loaded = true;
            run(registered.loaded);
        }
        run(registered.update, mutations);
        clearTimeout(afterTimer);
        afterTimer = setTimeout(() => run(registered.afterUpdate), 200);
        const tab = get_uiCurrentTab();
        if (tab && tab !== currentTab) {
            currentTab = tab;
            run(registered.tabChange);
        }
    }

    // gradio may add this script to the head after the document has loaded: start now if so, after the
    // extensions' scripts (which come next) have registered their callbacks.
    function start() {
        new MutationObserver(changed).observe(gradioApp(), {childList: true, subtree: true});
        setTimeout(() => changed([]), 0);
    }
    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", start);
    } else {
        setTimeout(start, 0);
    }
})();
