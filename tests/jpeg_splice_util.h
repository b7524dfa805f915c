/* jpeg_splice_util.h - shared by the jpeg_splice tests and benchmark: synthetic avatar frames and
 * an independent reference encoder (plain libjpeg with its own memory manager, written from the
 * settings stated in src/image/jpeg_splice.h, not from the module's code). */
#ifndef LS_TEST_JPEG_SPLICE_UTIL_H
#define LS_TEST_JPEG_SPLICE_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

static inline uint32_t ju_rand(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Photo-like BGR: smooth colour gradients, a few sinusoidal textures, hard-edged shapes and mild
 * noise - enough structure that every quantised coefficient pattern occurs. */
static inline void ju_photo(uint8_t *img, int w, int h, int stride, uint32_t seed) {
    uint32_t s = seed;
    double fx = 0.01 + (ju_rand(&s) % 100) * 0.0005, fy = 0.013 + (ju_rand(&s) % 100) * 0.0004;
    int cx = (int)(ju_rand(&s) % (unsigned)w), cy = (int)(ju_rand(&s) % (unsigned)h);
    int rad = 20 + (int)(ju_rand(&s) % (unsigned)(h / 3 + 1));
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            double v[3] = {
                96 + 80 * sin(x * fx) * cos(y * fy),
                128 + 100.0 * x / w - 50.0 * y / h,
                80 + 60 * sin((x + y) * 0.05) + 40.0 * y / h,
            };
            int inside = (x - cx) * (x - cx) + (y - cy) * (y - cy) < rad * rad;
            for (int c = 0; c < 3; c++) {
                double n = (double)(ju_rand(&s) % 17) - 8.0;
                double val = v[c] + n + (inside ? 60 - 40 * c : 0) + (((x / 37) + (y / 29)) % 5 == 0 ? 30 : 0);
                img[(size_t)y * stride + (size_t)x * 3 + c] = (uint8_t)(val < 0 ? 0 : val > 255 ? 255 : val);
            }
        }
    }
}

/* Uniform noise: the worst case for the entropy coder (many FF bytes to stuff). */
static inline void ju_noise(uint8_t *img, int w, int h, int stride, uint32_t seed) {
    uint32_t s = seed;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < 3 * w; x++) img[(size_t)y * stride + x] = (uint8_t)ju_rand(&s);
}

/* The reference: a plain libjpeg encode of the whole frame with the module's documented settings.
 * Returns a malloc'd JPEG (caller frees) or NULL. */
static inline uint8_t *ju_reference_encode(const uint8_t *bgr, int w, int h, int stride, int quality,
                                           int restart, unsigned long *len) {
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    unsigned char *buf = NULL;
    *len = 0;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, &buf, len);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = 3;
    ci.in_color_space = JCS_EXT_BGR;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, quality, TRUE);
    ci.dct_method = JDCT_ISLOW;
    ci.optimize_coding = FALSE;
    ci.comp_info[0].h_samp_factor = ci.comp_info[0].v_samp_factor = 2;
    ci.comp_info[1].h_samp_factor = ci.comp_info[1].v_samp_factor = 1;
    ci.comp_info[2].h_samp_factor = ci.comp_info[2].v_samp_factor = 1;
    ci.restart_interval = (unsigned)restart;
    jpeg_start_compress(&ci, TRUE);
    for (int y = 0; y < h; y++) {
        JSAMPROW row = (JSAMPROW)(uintptr_t)(bgr + (size_t)y * stride);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    return buf;
}

#endif
