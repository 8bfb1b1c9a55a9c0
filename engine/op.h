/* The op catalogue: every forward op the nets use, and the backward ops their gradient rules emit.
 * Shapes are NHWC for images; weights keep PyTorch's layout (conv: (Co, Ci/groups, kh, kw)). */
#ifndef KT_OP_H
#define KT_OP_H

typedef enum kt_op {
    KT_OP_NONE = 0,
    /* leaves */
    KT_OP_INPUT,  /* filled by the caller before a run */
    KT_OP_PARAM,  /* trainable parameter or state buffer (flag KT_NODE_BUFFER) */
    /* forward ops */
    KT_OP_CONV2D,         /* x (N,H,W,Ci), w (Co,Ci/g,kh,kw) [, b (Co)] ip: sh sw ph pw groups */
    KT_OP_LINEAR,         /* x (...,K), w (O,K) [, b (O)] -> (...,O) */
    KT_OP_MATMUL,         /* a, b 2-D or batched 3-D; ip: trans_a trans_b */
    KT_OP_LAYERNORM,      /* x (...,C) [, w (C), b (C)] over the last axis; fp: eps */
    KT_OP_BATCHNORM,      /* x (...,C), w, b, running_mean, running_var; fp: eps momentum */
    KT_OP_GELU,
    KT_OP_RELU,
    KT_OP_SILU,
    KT_OP_SIGMOID,
    KT_OP_ADD,            /* same shapes */
    KT_OP_MUL,            /* same shapes, or b (C) broadcast over the last axis of a */
    KT_OP_SCALE,          /* fp: s */
    KT_OP_BIAS,           /* x (...,C) + b (C) */
    KT_OP_AVGPOOL2D,      /* ip: kh kw sh sw ph pw count_include_pad */
    KT_OP_MAXPOOL2D,      /* ip: kh kw sh sw ph pw */
    KT_OP_GLOBAL_AVGPOOL, /* (N,H,W,C) -> (N,C) */
    KT_OP_DROPOUT,        /* fp: p; mask from (graph seed, step, node id) */
    KT_OP_DROP_PATH,      /* fp: p; one keep/drop per sample (axis 0) */
    KT_OP_SOFTMAX,        /* over the last axis */
    KT_OP_SOFTMAX_CE,     /* logits (N,C), labels i32 (N) -> (1); fp: label smoothing */
    KT_OP_BCE_LOGITS,     /* logits (N,C), targets (N,C) -> (1) mean */
    KT_OP_SUM,            /* all elements -> (1); fp: scale (1 for sum, 1/n for mean) */
    KT_OP_RESHAPE,        /* view: shares its source's memory */
    KT_OP_PERMUTE,        /* ip: perm */
    KT_OP_CONCAT,         /* ip[0]: axis */
    KT_OP_SLICE,          /* ip: axis start len */
    KT_OP_COPY,           /* plain copy (pins a gradient into the gradient buffer) */
    /* backward ops (emitted by gradient rules) */
    KT_OP_CONV2D_BWD_DATA,   /* dy, w -> dx; ip as CONV2D plus H W Ci of x at ip[5..7] */
    KT_OP_CONV2D_BWD_WEIGHT, /* dy, x -> dw; ip as CONV2D plus kh kw at ip[5..6] */
    KT_OP_REDUCE_ROWS,       /* (...,C) -> (C): sum over all leading axes */
    KT_OP_LAYERNORM_BWD_X,   /* dy, x [, w] -> dx; fp: eps */
    KT_OP_LAYERNORM_BWD_WB,  /* dy, x -> (2,C): row 0 dw, row 1 db */
    KT_OP_BATCHNORM_BWD_X,   /* dy, x, w, running_var -> dx; fp: eps; ip[0]: training */
    KT_OP_BATCHNORM_BWD_WB,  /* dy, x, running_mean, running_var -> (2,C); ip[0]: training */
    KT_OP_ACT_BWD,           /* dy, x (or y for sigmoid) -> dx; ip[0]: forward op */
    KT_OP_MUL_BCAST_BWD,     /* dy (...,C), a (...,C) -> (C): sum of dy*a over rows */
    KT_OP_AVGPOOL2D_BWD,     /* dy -> dx; ip as AVGPOOL2D plus H W at ip[7..8] */
    KT_OP_MAXPOOL2D_BWD,     /* dy, x -> dx; ip as MAXPOOL2D */
    KT_OP_GLOBAL_AVGPOOL_BWD,/* dy (N,C) -> (N,H,W,C) */
    KT_OP_DROPOUT_BWD,       /* dy -> dx, same mask as forward node ip[0]; fp: p */
    KT_OP_DROP_PATH_BWD,     /* dy -> dx, same mask as forward node ip[0]; fp: p */
    KT_OP_SOFTMAX_BWD,       /* dy, y -> dx */
    KT_OP_SOFTMAX_CE_BWD,    /* dloss (1), logits, labels -> dlogits; fp: smoothing */
    KT_OP_BCE_LOGITS_BWD,    /* dloss (1), logits, targets -> dlogits */
    KT_OP_SUM_BWD,           /* dloss (1) -> broadcast to shape; fp: scale */
    KT_OP_SLICE_BWD,         /* dy -> zeros of the source shape with dy placed at the slice */
    KT_OP_COUNT
} kt_op;

const char *kt_op_name(kt_op op);

#endif
