// A file that is not an image, chosen or dropped on an image upload box, is refused here with the message
// the server gives for img2img ("…: the uploaded file is not an image"): the inpaint editor would
// otherwise fail silently in the browser ("The source image could not be decoded").
(() => {
    const fieldName = (el) =>
        el.closest(".block")?.querySelector("[data-testid=block-label]")?.textContent.trim() || "Image";

    const refuse = (target, input) => {
        if (input) input.value = "";
        webuiNotice(`${fieldName(target)}: the uploaded file is not an image`);
    };

    const decodes = async (file) => {
        try {
            (await createImageBitmap(file)).close();
            return true;
        } catch {
            return false;
        }
    };

    const checked = new WeakSet(); // change events we re-sent after the files decoded
    document.addEventListener(
        "change",
        (event) => {
            const input = event.target;
            if (!(input instanceof HTMLInputElement) || input.type !== "file") return;
            if (!(input.accept || "").includes("image") || !input.files?.length) return;
            if (checked.has(event)) return;
            event.stopImmediatePropagation();
            Promise.all([...input.files].map(decodes)).then((results) => {
                if (!results.every(Boolean)) return refuse(input, input);
                const again = new Event("change", { bubbles: true });
                checked.add(again);
                input.dispatchEvent(again);
            });
        },
        true,
    );

    document.addEventListener(
        "drop",
        (event) => {
            const files = [...(event.dataTransfer?.files || [])];
            const box = event.target instanceof Element && event.target.closest(".block");
            if (!box || !files.length || !box.querySelector("input[type=file][accept*=image]")) return;
            if (files.every((file) => file.type.startsWith("image/"))) return;
            event.preventDefault();
            event.stopImmediatePropagation();
            refuse(box, null);
        },
        true,
    );
})();
