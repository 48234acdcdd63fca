// Numbers typed outside a slider's (or number box's) limits: set to the nearest limit and say so.
// gradio would send the value as typed on each keystroke (the server then refuses it with an error) and
// clamp it silently when the box loses focus. Values in range pass through untouched.
(() => {
    const limitedBox = (el) =>
        el instanceof HTMLInputElement && el.type === "number" && (el.min !== "" || el.max !== "");

    const outside = (el) => {
        if (el.value === "") return null;
        const value = Number(el.value);
        if (el.min !== "" && value < Number(el.min)) return { limit: el.min, side: "below the minimum" };
        if (el.max !== "" && value > Number(el.max)) return { limit: el.max, side: "above the maximum" };
        return null;
    };

    const label = (el) =>
        (el.getAttribute("aria-label") || "").replace(/^number input for /, "") ||
        el.closest(".block")?.querySelector("label span")?.textContent ||
        "Value";

    // while typing, a partial number ("1" on the way to "1024") must not reach the server
    document.addEventListener(
        "input",
        (event) => {
            if (limitedBox(event.target) && outside(event.target)) event.stopImmediatePropagation();
        },
        true,
    );

    const commit = (event) => {
        const box = event.target;
        if (!limitedBox(box)) return;
        const out = outside(box);
        if (!out) return;
        const typed = box.value;
        box.value = out.limit;
        box.dispatchEvent(new Event("input", { bubbles: true }));
        webuiNotice(`${label(box)}: ${typed} is ${out.side} ${out.limit}; set to ${out.limit}.`);
    };
    document.addEventListener("change", commit, true);
    document.addEventListener("keydown", (event) => event.key === "Enter" && commit(event), true);
})();
