/* avatar_boxes.c - face boxes: crop_rects.json and landmark files (cJSON), the landmark box rule,
 * and the ping-pong frame walk. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>

#include "avatar/avatar.h"
#include "avatar/avatar_io.h"

#define MAX_JSON_FILE ((size_t)512 << 20)
#define MAX_COORD 1e6

int avatar_box_from_landmarks(const double *xy, int n, ls_box *box, ls_err *err) {
    if (!xy || !box) return ls_fail(err, LS_EINVAL, "avatar_box_from_landmarks: NULL argument");
    if (n < 53) return ls_fail(err, LS_EINVAL, "the box needs landmarks 1, 31 and 52, got %d points", n);
    static const int used[] = {1, 31, 52};
    for (int i = 0; i < 3; i++)
        for (int c = 0; c < 2; c++) {
            double v = xy[2 * used[i] + c];
            if (!isfinite(v) || fabs(v) > MAX_COORD)
                return ls_fail(err, LS_EINVAL, "landmark %d has an unusable coordinate %g", used[i], v);
        }
    /* C's double -> int conversion truncates toward zero, exactly as Python's int(). */
    box->x1 = (int)xy[2 * 1];
    box->y1 = (int)xy[2 * 52 + 1];
    box->x2 = (int)xy[2 * 31];
    box->y2 = box->y1 + (box->x2 - box->x1);
    return 0;
}

int avatar_frame_index(int64_t k, int64_t start, int n) {
    if (n < 1 || k < 0 || start < 0) return -1;
    if (n == 1) return 0;
    int64_t period = 2 * (int64_t)(n - 1);
    int64_t t = (k % period + start % period) % period; /* no overflow for any k, start */
    return (int)(t < n ? t : period - t);
}

static cJSON *read_json_array(const char *path, int expect, int *count, ls_err *err) {
    size_t len;
    char *text = avatar_read_file(path, MAX_JSON_FILE, &len, err);
    if (!text) return NULL;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return ls_fail(err, LS_EFORMAT, "%s: not valid JSON", path), NULL;
    int n = cJSON_IsArray(root) ? cJSON_GetArraySize(root) : -1;
    const char *why = n < 0 ? "is not a JSON list" : n == 0 ? "is empty" : NULL;
    if (!why && n > AVATAR_MAX_FRAMES) why = "has too many frames";
    if (why) {
        cJSON_Delete(root);
        return ls_fail(err, LS_EFORMAT, "%s %s", path, why), NULL;
    }
    if (expect >= 0 && n != expect) {
        cJSON_Delete(root);
        return ls_fail(err, LS_EFORMAT, "%s has %d entries but the avatar has %d frames", path, n,
                       expect), NULL;
    }
    *count = n;
    return root;
}

/* An integral JSON number within int range (532 or 532.0). */
static int json_int(const cJSON *v, int *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || fabs(d) > MAX_COORD) return -1;
    *out = (int)d;
    return 0;
}

int avatar_read_boxes(const char *path, int expect, ls_box **boxes, int *count, ls_err *err) {
    int n;
    cJSON *root = read_json_array(path, expect, &n, err);
    if (!root) return -1;
    ls_box *b = malloc(sizeof *b * (size_t)n);
    if (!b) {
        cJSON_Delete(root);
        return ls_fail(err, LS_ENOMEM, "out of memory");
    }
    int i = 0, rc = 0;
    for (const cJSON *e = root->child; e; e = e->next, i++) {
        int v[4];
        int ok = cJSON_IsArray(e) && cJSON_GetArraySize(e) == 4;
        for (int c = 0; ok && c < 4; c++) ok = json_int(cJSON_GetArrayItem(e, c), &v[c]) == 0;
        if (!ok) {
            rc = ls_fail(err, LS_EFORMAT, "%s: box %d is not a list of 4 integers [x1, y1, x2, y2]",
                         path, i);
            break;
        }
        b[i] = (ls_box){v[0], v[1], v[2], v[3]};
        if (b[i].x1 >= b[i].x2 || b[i].y1 >= b[i].y2) {
            rc = ls_fail(err, LS_EFORMAT, "%s: box %d [%d, %d, %d, %d] is empty", path, i, v[0], v[1],
                         v[2], v[3]);
            break;
        }
    }
    cJSON_Delete(root);
    if (rc) {
        free(b);
        return -1;
    }
    *boxes = b;
    *count = n;
    return 0;
}

/* One frame's [[x, y], ...] into xy (capacity 2*AVATAR_LANDMARKS*2); returns the point count. */
static int frame_points(const cJSON *frame, double *xy, int cap) {
    int n = cJSON_IsArray(frame) ? cJSON_GetArraySize(frame) : -1;
    if (n < 0 || n > cap) return -1;
    int i = 0;
    for (const cJSON *p = frame->child; p; p = p->next, i++) {
        if (!cJSON_IsArray(p) || cJSON_GetArraySize(p) != 2) return -1;
        const cJSON *x = p->child, *y = x->next;
        if (!cJSON_IsNumber(x) || !cJSON_IsNumber(y)) return -1;
        xy[2 * i] = x->valuedouble;
        xy[2 * i + 1] = y->valuedouble;
    }
    return n;
}

int avatar_read_landmarks(const char *path, int expect, ls_box **boxes, int *count, ls_err *err) {
    int n;
    cJSON *root = read_json_array(path, expect, &n, err);
    if (!root) return -1;
    ls_box *b = malloc(sizeof *b * (size_t)n);
    if (!b) {
        cJSON_Delete(root);
        return ls_fail(err, LS_ENOMEM, "out of memory");
    }
    enum { CAP = 2 * AVATAR_LANDMARKS };
    double xy[2 * CAP];
    int i = 0, rc = 0;
    for (const cJSON *f = root->child; f; f = f->next, i++) {
        int pts = frame_points(f, xy, CAP);
        if (pts < 0) {
            rc = ls_fail(err, LS_EFORMAT, "%s: frame %d is not a list of [x, y] points", path, i);
            break;
        }
        if (avatar_box_from_landmarks(xy, pts, &b[i], err) != 0) {
            rc = ls_wrap(err, "%s: frame %d", path, i);
            break;
        }
    }
    cJSON_Delete(root);
    if (rc) {
        free(b);
        return -1;
    }
    *boxes = b;
    *count = n;
    return 0;
}
