// An image (PNG with its "parameters" text, as the web UI saves it) or an infotext dropped on a prompt box
// pastes its parameters into that tab, as A1111: the text goes into the box, then the tab's ↙ button reads it.
(() => {
    const TABS = ["txt2img", "img2img"];
    const INFOTEXT = /(^|\n)Steps: \d+/;

    // PNG text chunks: tEXt (latin-1) and uncompressed iTXt (UTF-8); the "parameters" one, or null.
    const pngParameters = (buffer) => {
        const bytes = new Uint8Array(buffer);
        const view = new DataView(buffer);
        const signature = [137, 80, 78, 71, 13, 10, 26, 10];
        if (bytes.length < 8 || signature.some((value, i) => bytes[i] !== value)) return null;
        for (let at = 8; at + 8 <= bytes.length; ) {
            const length = view.getUint32(at);
            const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
            const data = bytes.subarray(at + 8, at + 8 + length);
            const end = data.indexOf(0);
            const keyword = end > 0 ? new TextDecoder("latin1").decode(data.subarray(0, end)) : "";
            if (type === "tEXt" && keyword === "parameters") {
                return new TextDecoder("latin1").decode(data.subarray(end + 1));
            }
            if (type === "iTXt" && keyword === "parameters" && data[end + 1] === 0) {
                let rest = end + 3; // compression flag and method
                rest = data.indexOf(0, rest) + 1; // language tag
                rest = data.indexOf(0, rest) + 1; // translated keyword
                return new TextDecoder("utf-8").decode(data.subarray(rest));
            }
            if (type === "IEND") break;
            at += 12 + length;
        }
        return null;
    };

    const pasteInto = (tab, textarea, text) => {
        textarea.value = text;
        textarea.dispatchEvent(new Event("input", { bubbles: true }));
        setTimeout(() => document.querySelector(`#${tab}_paste`)?.click(), 100);
    };

    document.addEventListener(
        "drop",
        (event) => {
            const textarea = event.target instanceof Element && event.target.closest("textarea");
            const tab = textarea && TABS.find((name) => textarea.closest(`#${name}_prompt`));
            if (!tab) return;
            const file = event.dataTransfer?.files?.[0];
            const text = event.dataTransfer?.getData("text/plain") || "";
            if (file && file.type.startsWith("image/")) {
                event.preventDefault();
                event.stopImmediatePropagation();
                file.arrayBuffer().then((buffer) => {
                    const parameters = pngParameters(buffer);
                    if (parameters) pasteInto(tab, textarea, parameters);
                    else webuiNotice(`${file.name}: no generation parameters in this image`);
                });
            } else if (!file && INFOTEXT.test(text)) {
                event.preventDefault();
                event.stopImmediatePropagation();
                pasteInto(tab, textarea, text);
            }
        },
        true,
    );
})();
