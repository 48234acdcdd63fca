// A1111's lightbox for the galleries. Clicking the large image of a gallery's preview opens it full page:
// ←/→ go through that gallery's images (by clicking gradio's own thumbnails, so the selection and the
// infotext follow), a click switches between fitting the window and 100 %, the wheel zooms around the
// pointer, dragging pans, Esc, ✕ or a click beside the image closes.
(() => {
    const ZOOM_STEP = 1.25;
    const MIN_SCALE = 0.05;
    const MAX_SCALE = 32;
    const CLICK_SLOP_PX = 4; // a press that moves further is a drag, not a click
    const view = { gallery: null, index: 0, scale: 1, fit: true, drag: null };
    let box = null;

    const parts = () => ({
        frame: box.querySelector(".webui-lightbox-frame"),
        image: box.querySelector("#webui_lightbox_image"),
        zoom: box.querySelector("#webui_lightbox_zoom"),
    });

    const build = () => {
        box = document.createElement("div");
        box.id = "webui_lightbox";
        box.setAttribute("role", "dialog");
        box.setAttribute("aria-label", "Image viewer");
        box.innerHTML = `<div class="webui-lightbox-frame"><img id="webui_lightbox_image" alt="" draggable="false"></div>
            <div class="webui-lightbox-bar"><span id="webui_lightbox_zoom"></span>
            <button id="webui_lightbox_close" title="Close (Esc)">✕</button></div>`;
        document.body.appendChild(box);
        const { frame, image } = parts();
        box.querySelector("#webui_lightbox_close").addEventListener("click", close);
        image.addEventListener("load", () => view.fit && fitScale());
        frame.addEventListener("wheel", wheel, { passive: false });
        frame.addEventListener("mousedown", (event) => {
            if (event.button !== 0) return;
            event.preventDefault();
            view.drag = { x: event.clientX, y: event.clientY, moved: false, onImage: event.target === image };
        });
        window.addEventListener("mousemove", (event) => {
            const drag = view.drag;
            if (!drag) return;
            const dx = event.clientX - drag.x;
            const dy = event.clientY - drag.y;
            if (!drag.moved && Math.hypot(dx, dy) < CLICK_SLOP_PX) return;
            drag.moved = true;
            frame.scrollLeft -= dx;
            frame.scrollTop -= dy;
            drag.x = event.clientX;
            drag.y = event.clientY;
        });
        window.addEventListener("mouseup", () => {
            const drag = view.drag;
            view.drag = null;
            if (!drag || drag.moved) return;
            if (drag.onImage) toggleZoom();
            else close(); // a click beside the image
        });
    };

    const natural = () => {
        const { image } = parts();
        return { width: image.naturalWidth || 1, height: image.naturalHeight || 1 };
    };

    const setScale = (scale) => {
        const { image, zoom } = parts();
        const size = natural();
        view.scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, scale));
        image.style.width = `${Math.round(size.width * view.scale)}px`;
        image.style.height = `${Math.round(size.height * view.scale)}px`;
        zoom.textContent = `${view.fit ? "Fit · " : ""}${Math.round(view.scale * 100)} %`;
    };

    const fitScale = () => {
        const { frame } = parts();
        const size = natural();
        view.fit = true;
        setScale(Math.min(frame.clientWidth / size.width, frame.clientHeight / size.height));
    };

    const toggleZoom = () => {
        if (view.fit) {
            view.fit = false;
            setScale(1);
        } else {
            fitScale();
        }
    };

    // zoom by the wheel, keeping the point under the pointer where it is
    const wheel = (event) => {
        event.preventDefault();
        const { frame, image } = parts();
        const before = image.getBoundingClientRect();
        const fx = (event.clientX - before.left) / before.width;
        const fy = (event.clientY - before.top) / before.height;
        view.fit = false;
        setScale(view.scale * (event.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP));
        const after = image.getBoundingClientRect();
        frame.scrollLeft += after.left + fx * after.width - event.clientX;
        frame.scrollTop += after.top + fy * after.height - event.clientY;
    };

    const thumbnails = () => [...view.gallery.querySelectorAll("button.thumbnail-item")];

    const show = (src) => {
        const { image } = parts();
        view.fit = true;
        if (image.getAttribute("src") === src && image.complete) fitScale();
        else image.src = src;
    };

    const go = (delta) => {
        const items = thumbnails();
        if (!items.length) return;
        view.index = (view.index + delta + items.length) % items.length;
        const item = items[view.index];
        item.click(); // gradio's selection: its preview and the infotext follow
        const source = item.querySelector("img");
        if (source) show(source.currentSrc || source.src);
    };

    const open = (gallery, image) => {
        if (!box) build();
        view.gallery = gallery;
        const items = thumbnails();
        const selected = items.findIndex((item) => item.classList.contains("selected"));
        view.index = Math.max(0, selected);
        box.style.display = "block";
        show(image.currentSrc || image.src);
    };

    function close() {
        if (box) box.style.display = "none";
        view.gallery = null;
    }

    const isOpen = () => box !== null && box.style.display === "block";

    // Capture phase: the preview's own click handler (left half: previous image, right half: next) is
    // not run for a click that opens the lightbox.
    document.addEventListener(
        "click",
        (event) => {
            const image = event.target;
            if (!(image instanceof HTMLImageElement)) return;
            const preview = image.closest(".preview");
            const gallery = preview && preview.closest(".block[id]");
            if (!gallery || !gallery.querySelector("button.thumbnail-item")) return; // not a gallery
            if (image.closest(".thumbnails, button.thumbnail-item")) return;
            event.preventDefault();
            event.stopPropagation();
            open(gallery, image);
        },
        true,
    );

    window.addEventListener(
        "keydown",
        (event) => {
            if (!isOpen()) return;
            const moves = { ArrowLeft: -1, ArrowRight: 1 };
            if (event.key in moves) go(moves[event.key]);
            else if (event.key === "Escape") close();
            else return;
            event.preventDefault();
            event.stopPropagation();
        },
        true,
    );
})();
