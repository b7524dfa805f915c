/* jpeg_splice_codec.c - a libjpeg compressor whose per-image work never calls malloc
 * (see jpeg_splice_codec.h).
 *
 * Why a memory manager of our own: libjpeg builds every compression module in jpeg_start_compress
 * through cinfo->mem and frees them all in jpeg_abort/jpeg_finish_compress; the stock manager takes
 * each pool chunk from malloc, so every image costs dozens of malloc/free pairs. struct
 * jpeg_memory_mgr is a public method table, so we install one whose pools are two arenas sized at
 * creation: JPOOL_PERMANENT (component info, quantisation and Huffman tables, allocated once by the
 * first jpeg_set_defaults) and JPOOL_IMAGE (reset by free_pool at the end of every image).
 * Virtual arrays are only needed for multi-pass modes (Huffman optimisation, progressive), which
 * this module never uses, so requesting one is an error. */
#include "image/jpeg_splice_codec.h"

#include <string.h>

#include <jerror.h>

/* libjpeg-turbo's SIMD code expects 32-byte aligned rows and tables; 64 also keeps rows on their
 * own cache lines. Sample rows are padded to a multiple of this many bytes, like jmemmgr does. */
#define CODEC_ALIGN 64
#define PERMANENT_BYTES (32u * 1024u)

static jsplice_codec *codec_of(j_common_ptr ci) {
    return (jsplice_codec *)(void *)ci; /* cinfo is the first member of jsplice_codec */
}

/* ---- memory manager over two arenas ---- */

static void *mem_alloc(j_common_ptr ci, int pool, size_t size) {
    jsplice_codec *c = codec_of(ci);
    ls_arena *a = pool == JPOOL_PERMANENT ? &c->permanent : pool == JPOOL_IMAGE ? &c->image : NULL;
    if (!a) ERREXIT1(ci, JERR_BAD_POOL_ID, pool);
    void *p = arena_alloc(a, size ? size : 1, CODEC_ALIGN);
    if (!p) ERREXIT1(ci, JERR_OUT_OF_MEMORY, pool == JPOOL_PERMANENT ? 100 : 101);
    return p;
}

static JSAMPARRAY mem_sarray(j_common_ptr ci, int pool, JDIMENSION per_row, JDIMENSION rows) {
    size_t row_bytes = ((size_t)per_row * sizeof(JSAMPLE) + CODEC_ALIGN - 1) & ~(size_t)(CODEC_ALIGN - 1);
    JSAMPARRAY ptrs = mem_alloc(ci, pool, (size_t)rows * sizeof(JSAMPROW));
    JSAMPLE *data = mem_alloc(ci, pool, row_bytes * rows);
    for (JDIMENSION r = 0; r < rows; r++) ptrs[r] = data + (size_t)r * row_bytes / sizeof(JSAMPLE);
    return ptrs;
}

static JBLOCKARRAY mem_barray(j_common_ptr ci, int pool, JDIMENSION per_row, JDIMENSION rows) {
    JBLOCKARRAY ptrs = mem_alloc(ci, pool, (size_t)rows * sizeof(JBLOCKROW));
    JBLOCK *data = mem_alloc(ci, pool, (size_t)per_row * rows * sizeof(JBLOCK));
    for (JDIMENSION r = 0; r < rows; r++) ptrs[r] = data + (size_t)r * per_row;
    return ptrs;
}

static jvirt_sarray_ptr mem_virt_sarray(j_common_ptr ci, int pool, boolean zero, JDIMENSION w,
                                        JDIMENSION h, JDIMENSION maxaccess) {
    (void)pool, (void)zero, (void)w, (void)h, (void)maxaccess;
    ERREXIT(ci, JERR_NOT_COMPILED);
    return NULL;
}

static jvirt_barray_ptr mem_virt_barray(j_common_ptr ci, int pool, boolean zero, JDIMENSION w,
                                        JDIMENSION h, JDIMENSION maxaccess) {
    (void)pool, (void)zero, (void)w, (void)h, (void)maxaccess;
    ERREXIT(ci, JERR_NOT_COMPILED);
    return NULL;
}

static void mem_realize(j_common_ptr ci) { (void)ci; /* no virtual arrays were requested */ }

static JSAMPARRAY mem_access_sarray(j_common_ptr ci, jvirt_sarray_ptr p, JDIMENSION r, JDIMENSION n,
                                    boolean w) {
    (void)p, (void)r, (void)n, (void)w;
    ERREXIT(ci, JERR_VIRTUAL_BUG);
    return NULL;
}

static JBLOCKARRAY mem_access_barray(j_common_ptr ci, jvirt_barray_ptr p, JDIMENSION r, JDIMENSION n,
                                     boolean w) {
    (void)p, (void)r, (void)n, (void)w;
    ERREXIT(ci, JERR_VIRTUAL_BUG);
    return NULL;
}

static void mem_free_pool(j_common_ptr ci, int pool) {
    jsplice_codec *c = codec_of(ci);
    arena_reset(&c->image);
    if (pool == JPOOL_PERMANENT) arena_reset(&c->permanent);
}

static void mem_self_destruct(j_common_ptr ci) {
    /* Never reached in practice: jsplice_codec_free puts libjpeg's manager back first. */
    mem_free_pool(ci, JPOOL_PERMANENT);
}

/* ---- destination over a fixed buffer ---- */

static void dest_init(j_compress_ptr ci) {
    jsplice_codec *c = codec_of((j_common_ptr)ci);
    c->dest.next_output_byte = c->out;
    c->dest.free_in_buffer = c->out_cap;
}

static boolean dest_full(j_compress_ptr ci) {
    codec_of((j_common_ptr)ci)->out_overflow = 1; /* never grow: the caller sized the buffer */
    ERREXIT(ci, JERR_BUFFER_SIZE);
    return FALSE;
}

static void dest_term(j_compress_ptr ci) { (void)ci; }

/* ---- errors: longjmp back, never print ---- */

static void on_error(j_common_ptr ci) { longjmp(codec_of(ci)->escape, 1); }
static void on_message(j_common_ptr ci, int level) { (void)ci, (void)level; }
static void on_output(j_common_ptr ci) { (void)ci; }

int jsplice_codec_init(jsplice_codec *c, int max_width, ls_err *err) {
    memset(c, 0, sizeof *c);
    if (max_width < 1 || max_width > JPEG_MAX_DIMENSION)
        return ls_fail(err, LS_EINVAL, "jpeg splice: max width %d out of range 1..%d", max_width,
                       (int)JPEG_MAX_DIMENSION);
    c->max_width = max_width;
    c->cinfo.err = jpeg_std_error(&c->jerr);
    c->jerr.error_exit = on_error;
    c->jerr.emit_message = on_message;
    c->jerr.output_message = on_output;
    if (setjmp(c->escape)) return ls_fail(err, LS_ENOMEM, "jpeg splice: cannot create a compressor");
    jpeg_create_compress(&c->cinfo);
    c->created = 1;

    /* Image pool: the largest per-image users are the main controller (16 luma + 2x8 chroma rows
     * of the padded width) and the preprocessor's colour buffers (3 x 2 rows); 64 bytes per
     * padded column covers them with room to spare, plus fixed-size modules (Huffman and DCT
     * tables). Measured high water (libjpeg-turbo 2.1.5): 12 KB + ~30 bytes per column, 67 KB at
 * 1920 px against 250 KB reserved; the permanent pool peaks at 2.6 KB. */
    size_t padded = ((size_t)max_width + 15) & ~(size_t)15;
    if (arena_init(&c->permanent, PERMANENT_BYTES) || arena_init(&c->image, 128 * 1024 + 64 * padded)) {
        jsplice_codec_free(c);
        return ls_fail(err, LS_ENOMEM, "jpeg splice: cannot allocate compressor pools");
    }
    c->mem = (struct jpeg_memory_mgr){
        .alloc_small = mem_alloc,
        .alloc_large = mem_alloc,
        .alloc_sarray = mem_sarray,
        .alloc_barray = mem_barray,
        .request_virt_sarray = mem_virt_sarray,
        .request_virt_barray = mem_virt_barray,
        .realize_virt_arrays = mem_realize,
        .access_virt_sarray = mem_access_sarray,
        .access_virt_barray = mem_access_barray,
        .free_pool = mem_free_pool,
        .self_destruct = mem_self_destruct,
        .max_memory_to_use = (long)c->image.cap,
        .max_alloc_chunk = (long)c->image.cap,
    };
    c->lib_mem = c->cinfo.mem;
    c->cinfo.mem = &c->mem;
    c->dest.init_destination = dest_init;
    c->dest.empty_output_buffer = dest_full;
    c->dest.term_destination = dest_term;
    c->cinfo.dest = &c->dest;
    return 0;
}

void jsplice_codec_free(jsplice_codec *c) {
    if (c->created) {
        c->cinfo.mem = c->lib_mem;
        jpeg_destroy_compress(&c->cinfo);
        c->created = 0;
    }
    arena_free(&c->permanent);
    arena_free(&c->image);
}

/* The module's fixed settings; see the header. Safe to repeat per image: after the first call
 * jpeg_set_defaults and jpeg_set_quality reuse the tables already in the permanent pool. */
static void apply_settings(j_compress_ptr ci, int quality, int restart_mcus, int headerless) {
    jpeg_set_defaults(ci);
    jpeg_set_quality(ci, quality, TRUE);
    ci->dct_method = JDCT_ISLOW;
    ci->optimize_coding = FALSE;
    ci->smoothing_factor = 0;
    ci->comp_info[0].h_samp_factor = ci->comp_info[0].v_samp_factor = 2;
    for (int k = 1; k < 3; k++) ci->comp_info[k].h_samp_factor = ci->comp_info[k].v_samp_factor = 1;
    ci->restart_interval = (unsigned)restart_mcus; /* not restart_in_rows: see the notes */
    ci->restart_in_rows = 0;
    ci->write_JFIF_header = headerless ? FALSE : TRUE;
    ci->write_Adobe_marker = FALSE;
}

int jsplice_codec_encode(jsplice_codec *c, const uint8_t *bgr, int width, int height, int stride,
                         int quality, int restart_mcus, int headerless, uint8_t *out, size_t out_cap,
                         size_t *out_len, ls_err *err) {
    if (!bgr || !out || !out_len)
        return ls_fail(err, LS_EINVAL, "jpeg splice: NULL image or output");
    if (width < 1 || height < 1 || width > c->max_width || height > JPEG_MAX_DIMENSION)
        return ls_fail(err, LS_EINVAL, "jpeg splice: %dx%d outside 1..%d x 1..%d", width, height,
                       c->max_width, (int)JPEG_MAX_DIMENSION);
    if (stride < 3 * width) return ls_fail(err, LS_EINVAL, "jpeg splice: stride %d < 3*%d", stride, width);
    if (quality < 1 || quality > 100) return ls_fail(err, LS_EINVAL, "jpeg splice: quality %d not in 1..100", quality);
    if (restart_mcus < 1 || restart_mcus > 65535)
        return ls_fail(err, LS_EINVAL, "jpeg splice: restart interval %d not in 1..65535", restart_mcus);

    j_compress_ptr ci = &c->cinfo;
    c->out = out;
    c->out_cap = out_cap;
    c->out_overflow = 0;
    if (setjmp(c->escape)) {
        char msg[JMSG_LENGTH_MAX];
        c->jerr.format_message((j_common_ptr)ci, msg);
        jpeg_abort_compress(ci); /* back to a clean state; resets the image pool */
        if (c->out_overflow)
            return ls_fail(err, LS_ENOMEM, "jpeg splice: output buffer of %zu bytes too small", out_cap);
        return ls_fail(err, c->jerr.msg_code == JERR_OUT_OF_MEMORY ? LS_ENOMEM : LS_EINTERNAL,
                       "jpeg splice: libjpeg: %s", msg);
    }
    ci->image_width = (JDIMENSION)width;
    ci->image_height = (JDIMENSION)height;
    ci->input_components = 3;
    ci->in_color_space = JCS_EXT_BGR;
    apply_settings(ci, quality, restart_mcus, headerless);
    if (headerless) jpeg_suppress_tables(ci, TRUE);
    jpeg_start_compress(ci, headerless ? FALSE : TRUE);
    /* libjpeg only reads the rows; the cast drops const because JSAMPROW is not const. Passing row
     * pointers into the caller's frame means a sub-rectangle needs no copy. */
    JSAMPROW rows[16];
    while (ci->next_scanline < ci->image_height) {
        JDIMENSION y = ci->next_scanline, n = ci->image_height - y;
        if (n > 16) n = 16;
        for (JDIMENSION i = 0; i < n; i++) rows[i] = (JSAMPROW)(uintptr_t)(bgr + (size_t)(y + i) * (size_t)stride);
        jpeg_write_scanlines(ci, rows, n);
    }
    jpeg_finish_compress(ci);
    *out_len = out_cap - c->dest.free_in_buffer;
    return 0;
}
