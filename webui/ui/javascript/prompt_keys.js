// Prompt editing keys, as A1111: Ctrl+↑/↓ changes the weight of the selected words (or the word at the
// caret) in 0.1 steps, "(word:1.1)"; weight 1 drops the brackets. Alt+←/→ moves the comma-separated
// tag at the caret one place left or right.
(() => {
    const WEIGHT_STEP = 0.1;
    const isPrompt = (el) => el instanceof HTMLTextAreaElement && !!el.closest("[id$=_prompt]");

    const wordAround = (text, at) => {
        let start = at;
        let end = at;
        while (start > 0 && /[\w'-]/.test(text[start - 1])) start--;
        while (end < text.length && /[\w'-]/.test(text[end])) end++;
        return [start, end];
    };

    const changed = (box, text, start, end) => {
        box.value = text;
        box.setSelectionRange(start, end);
        box.dispatchEvent(new Event("input", { bubbles: true })); // gradio reads the box on input
    };

    const editWeight = (box, up) => {
        let { selectionStart: start, selectionEnd: end, value: text } = box;
        if (start === end) [start, end] = wordAround(text, start);
        if (start === end) return false;
        const delta = up ? WEIGHT_STEP : -WEIGHT_STEP;
        const weighted = text[start - 1] === "(" && text.slice(end).match(/^:(-?\d+(?:\.\d+)?)\)/);
        if (weighted) {
            const weight = Math.round((Number(weighted[1]) + delta) * 100) / 100;
            const inner = text.slice(start, end);
            const after = text.slice(end + weighted[0].length);
            if (weight === 1) {
                changed(box, text.slice(0, start - 1) + inner + after, start - 1, end - 1);
            } else {
                changed(box, `${text.slice(0, start)}${inner}:${weight})${after}`, start, end);
            }
            return true;
        }
        const weight = Math.round((1 + delta) * 100) / 100;
        const inner = text.slice(start, end);
        changed(box, `${text.slice(0, start)}(${inner}:${weight})${text.slice(end)}`, start + 1, end + 1);
        return true;
    };

    const moveTag = (box, right) => {
        const text = box.value;
        const tags = text.split(",").map((tag) => tag.trim());
        const index = text.slice(0, box.selectionStart).split(",").length - 1;
        const other = right ? index + 1 : index - 1;
        if (other < 0 || other >= tags.length) return false;
        [tags[index], tags[other]] = [tags[other], tags[index]];
        const joined = tags.join(", ");
        const start = tags.slice(0, other).join(", ").length + (other > 0 ? 2 : 0);
        changed(box, joined, start, start + tags[other].length);
        return true;
    };

    document.addEventListener(
        "keydown",
        (event) => {
            const box = event.target;
            if (!isPrompt(box)) return;
            const vertical = event.key === "ArrowUp" || event.key === "ArrowDown";
            const horizontal = event.key === "ArrowLeft" || event.key === "ArrowRight";
            let done = false;
            if (vertical && (event.ctrlKey || event.metaKey)) done = editWeight(box, event.key === "ArrowUp");
            if (horizontal && event.altKey) done = moveTag(box, event.key === "ArrowRight");
            if (done) event.preventDefault();
        },
        true,
    );
})();
