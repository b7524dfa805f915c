/* box.h - a face box in full-frame pixel coordinates, as the reference uses it.
 *
 * The crop is img[y1:y2, x1:x2] (half-open, numpy slicing), so width = x2 - x1, height = y2 - y1.
 * A valid box has 0 <= x1 < x2 <= frame width and 0 <= y1 < y2 <= frame height. */
#ifndef LS_BOX_H
#define LS_BOX_H

typedef struct ls_box {
    int x1, y1, x2, y2;
} ls_box;

static inline int box_width(ls_box b) { return b.x2 - b.x1; }
static inline int box_height(ls_box b) { return b.y2 - b.y1; }
static inline int box_inside(ls_box b, int w, int h) {
    return b.x1 >= 0 && b.y1 >= 0 && b.x1 < b.x2 && b.y1 < b.y2 && b.x2 <= w && b.y2 <= h;
}

#endif
