/* Grad-CAM pictures: the photo with a heat map of what drove the prediction laid over it. */
#ifndef KT_GRADCAM_H
#define KT_GRADCAM_H

#include "base/status.h"

/* cam (h, w) >= 0 in feature-map cells; image_path is the original photo; the PNG shows the photo
 * (longest side 448 px) with the normalised, bilinearly upsampled map in a jet colour map at 45%
 * opacity, and the label as a caption. Written atomically. */
kt_status kt_gradcam_write_png(const char *image_path, const float *cam, int h, int w, const char *label,
                               const char *out_png, kt_err *err);

#endif
