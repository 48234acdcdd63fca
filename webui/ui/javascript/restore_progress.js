// Re-attaching to a job after a page reload (A1111's "restore progress").
// The page's jobs belong to this browser: a random id kept in the `webui_browser` cookie, which the server
// reads (webui/ui/owners.py) because gradio's session ends with the page. While a generation tab's
// progress display shows a job (its `data-job`, webui/ui/progress.py) the tab keeps the id in
// localStorage; on load the tab hands it back (webuiTakeJob) and the server follows that job again when it
// is this browser's, or this login's. The id is forgotten once the results are shown.
(() => {
    const COOKIE = "webui_browser";
    if (!document.cookie.split("; ").some((item) => item.startsWith(`${COOKIE}=`))) {
        // getRandomValues, unlike randomUUID, also works on a plain-http LAN address
        const bytes = crypto.getRandomValues(new Uint8Array(16));
        const id = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
        document.cookie = `${COOKIE}=${id}; path=/; max-age=31536000; SameSite=Strict`;
    }

    const shownBefore = {}; // tab → the job this page last showed
    setInterval(() => {
        for (const box of document.querySelectorAll("[id$=_progress]")) {
            const tab = box.id.slice(0, -"_progress".length);
            const job = box.querySelector("[data-job]")?.dataset.job;
            if (job) {
                localStorage.setItem(webuiJobKey(tab), job);
                shownBefore[tab] = job;
            } else if (shownBefore[tab]) { // the display went from a job to its results
                if (localStorage.getItem(webuiJobKey(tab)) === shownBefore[tab]) localStorage.removeItem(webuiJobKey(tab));
                delete shownBefore[tab];
            }
        }
    }, 300);
})();

function webuiJobKey(tab) {
    return `webui_job_${tab}`;
}

// The job `tab` showed before the page was reloaded ("" when none); forgotten here, the server's
// progress display stores it again while it follows the job.
function webuiTakeJob(tab) {
    const job = localStorage.getItem(webuiJobKey(tab)) || "";
    localStorage.removeItem(webuiJobKey(tab));
    return job;
}
