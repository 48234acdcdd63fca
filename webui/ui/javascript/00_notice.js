// A short message in the page's corner (our scripts' counterpart of gradio's toasts, which only the
// server can raise): what the page changed on the user's behalf.
function webuiNotice(text, seconds = 8) {
    let box = document.getElementById("webui_notices");
    if (!box) {
        box = document.createElement("div");
        box.id = "webui_notices";
        document.body.appendChild(box);
    }
    const item = document.createElement("div");
    item.className = "webui-notice";
    item.setAttribute("role", "status");
    item.textContent = text;
    box.appendChild(item);
    setTimeout(() => item.remove(), seconds * 1000);
}
