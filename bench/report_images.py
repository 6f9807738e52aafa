"""The profile images' part of BENCHMARKS.md, from the results of
bench/images.sh: bench/report.py places it in the whole report; run alone
(after `BENCH_ONLY=images bench/run.sh`) it prints a report of its own:

    python3 bench/report_images.py RESULTS_DIR COMMAND
"""

from report_common import codes, ratio_row, standalone

# The targets: uploads at half of vipsthumbnail's rate or better, and the
# peak resident memory of 16 uploads of 5 MiB in flight.
RATE_SHARE = 0.5
PEAK_MIB = 300


def mib(kib):
    return "%.1f MiB" % (kib / 1024)


def section(raw, cores):
    """The lines of the Profile images section, and its rows of the targets table."""
    lines, rows = [], []
    w = lines.append
    vips = raw.load_optional("images_vips.json")
    vips_single = raw.load_optional("images_vips_single.json")
    upload = raw.load_optional("upload_sqlite.json")
    memory = raw.load_optional("images_memory.json")
    if not (vips or upload or memory):
        return lines, rows

    w("## Profile images")
    w("")
    w("The same photo-like 1732×1155 JPEG (about 2 megapixels, `account-loadgen make-jpeg`: gradients, a soft")
    w("disc and fine noise, quality 90) made into a 512×512 centred square, JPEG quality 85, no metadata:")
    w("by `vipsthumbnail` (libvips) as the machine's reference, one process per core, each one thread")
    w("(`VIPS_CONCURRENCY=1`) making one image after another, 8 images per process (copies of the file")
    w("under names of their own, the operation cache off) so that starting a process is mostly spread")
    w("out, and, for comparison, one image per process; and by the service, the file uploaded with")
    w("SetProfileImage (`account-loadgen upload`: one account, the file in 60000-byte chunks, %d calls in" % (2 * cores))
    w("flight over 4 connections) to the release build on SQLite with a file store (`MEDIA_STORE=file://…`,")
    w("`IMAGE_CONCURRENCY` = cores). Each upload also makes the 128×128 thumbnail, writes both files and")
    w("switches the account's row; every upload after the first is the same image again, so the row is")
    w("left as it is and nothing is queued for deletion.")
    w("")
    if vips or upload:
        w("| measure | images/s | p50 ms | p99 ms | codes |")
        w("|---|---|---|---|---|")
        for v in (vips, vips_single):
            if v:
                w("| vipsthumbnail %s, %d processes at once, %d image(s) per process, %.0f s (`--size 512x512 --smartcrop centre`, `[Q=85,strip]`; output %s, %d bytes) | %.1f | | | |" % (
                    v["version"].replace("vips-", ""), v["processes"], v.get("images_per_process", 1), v["duration_s"],
                    v["output"].split(",")[0], v["output_bytes"], v["per_second"]))
        if upload:
            w("| SetProfileImage, SQLite, %d in flight, %.0f s | %.1f | %.1f | %.1f | %s |" % (
                2 * cores, upload["duration_s"], upload["ok_throughput"],
                upload["latency_ms"]["p50"], upload["latency_ms"]["p99"], codes(upload)))
        w("")
        rows.append(ratio_row("Profile images: SetProfileImage ≥ 50% of vipsthumbnail's rate (2-megapixel JPEG, SQLite; vipsthumbnail 8 images per process)",
                              upload and upload["ok_throughput"], vips and vips["per_second"], RATE_SHARE))
    if memory:
        w("**Memory**: a freshly started service (SQLite, file store), then %d uploads at once of a" % memory["uploads"])
        w("%d×%d JPEG of %d bytes (`make-jpeg --quality %d --noise %d`; the limit is 5242880), each %.0f" % (
            memory["width"], memory["height"], memory["file_bytes"], memory["quality"], memory["noise"],
            memory["width"] * memory["height"] / 1e6))
        w("megapixels to decode; VmHWM from /proc after the run is the peak resident memory of the whole process.")
        w("")
        w("| idle (VmRSS) | peak during the uploads (VmHWM) | after (VmRSS) | uploads | took | p50 ms | max ms | codes |")
        w("|---|---|---|---|---|---|---|---|")
        w("| %s | %s | %s | %d | %.1f s | %.0f | %.0f | %s |" % (
            mib(memory["idle_kib"]), mib(memory["peak_kib"]), mib(memory["after_kib"]), memory["uploads"],
            memory["duration_s"], memory["latency_ms"]["p50"], memory["latency_ms"]["max"],
            " ".join("%s=%d" % kv for kv in memory["codes"].items())))
        w("")
        all_ok = list(memory["codes"]) == ["OK"]
        rows.append(("Profile images: peak resident memory ≤ %d MiB during %d concurrent uploads of a 5 MiB JPEG, all answered OK" % (
            PEAK_MIB, memory["uploads"]),
            "%s; %s" % (mib(memory["peak_kib"]), " ".join("%s=%d" % kv for kv in memory["codes"].items())),
            all_ok and memory["peak_kib"] <= PEAK_MIB * 1024))
    return lines, rows


def explain(raw, failing):
    """What the report says about a profile-image target that is not met."""
    lines = []
    w = lines.append
    if any(f.startswith("Profile images: SetProfileImage") for f in failing):
        w("**SetProfileImage vs vipsthumbnail.** The two do different amounts of work for the same square.")
        w("libvips decodes a JPEG at a reduced scale when the output is smaller (shrink-on-load, the")
        w("DCT scaling of libjpeg): for a 512 square from a 1155-pixel side it decodes a quarter of the")
        w("pixels, then shrinks with a box filter before its final Lanczos pass. The service decodes every")
        w("pixel (`image` with zune-jpeg, which has no scaled decoding), crops and resizes with Lanczos3")
        w("(`fast_image_resize`), converts to sRGB, then also makes the 128 thumbnail, hashes the result")
        w("(SHA-256), writes and syncs two files and runs one transaction; the 2 MB upload crosses gRPC in")
        w("35 messages, and the load generator that sends them shares the same cores. What would help:")
        w("decoding JPEGs at 1/2, 1/4 or 1/8 scale when the short side is at least twice 512 (libjpeg-turbo")
        w("through the `mozjpeg` crate, or `jpeg-decoder`'s `scale`), which removes most of the decoding")
        w("and resizing work for camera-sized uploads; and a load generator on another machine.")
        w("")
    if any(f.startswith("Profile images: peak resident memory") for f in failing):
        w("**Memory during large uploads.** Every upload in flight is held whole while it waits for an")
        w("image thread (the queue admits 16), in a buffer that grows by doubling as chunks arrive, and")
        w("each of the `IMAGE_CONCURRENCY` images being processed is decoded whole (12 megapixels are")
        w("36 MB of RGB). What would help: reserving the buffer from the first chunks' running total up to")
        w("PROFILE_IMAGE_MAX_BYTES instead of doubling; decoding JPEGs at a reduced scale (above), so that")
        w("a 12-megapixel upload never exists at full size; a smaller image queue for large uploads.")
        w("")
    return lines


if __name__ == "__main__":
    print(standalone(section, explain))
