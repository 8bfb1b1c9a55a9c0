/* Model assembly: architecture lookup, loss and backward, planning, parameter references. */
#include "nets/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nets/convnext.h"
#include "nets/smallcnn.h"

void kt_model_arch_names(char *buf, int len) {
    int n, k = 0;
    const kt_convnext_cfg *c = kt_convnext_list(&n);
    buf[0] = '\0';
    for (int i = 0; i < n && k < len; i++) k += snprintf(buf + k, (size_t)(len - k), "%s%s", i ? ", " : "", c[i].name);
    if (k < len) snprintf(buf + k, (size_t)(len - k), ", %s", KT_SMALLCNN_NAME);
}

int kt_model_arch_known(const char *arch) { return kt_convnext_find(arch) || (arch && !strcmp(arch, KT_SMALLCNN_NAME)); }

int kt_model_size_multiple(const char *arch) { return kt_convnext_find(arch) ? 32 : 8; }

static kt_status build_refs(kt_model *m, kt_err *err) {
    kt_graph *g = &m->g;
    m->refs = calloc((size_t)g->n_params, sizeof *m->refs);
    if (!m->refs) return kt_err_set(err, KT_ERR_NOMEM, "no memory for parameter references");
    for (int p = 0; p < g->n_params; p++) {
        kt_node *n = g->params[p].node;
        kt_param_ref *r = &m->refs[p];
        r->name = n->name;
        r->ndim = n->ndim;
        for (int d = 0; d < n->ndim; d++) r->shape[d] = n->shape[d];
        if (n->flags & KT_NODE_FILE_4D) {
            r->file_ndim = 4;
            r->file_shape[0] = n->shape[0];
            r->file_shape[1] = n->shape[1];
            r->file_shape[2] = r->file_shape[3] = 1;
        }
        r->data = ((n->flags & KT_NODE_BUFFER) ? m->host_state : m->host_params) + g->params[p].offset;
        r->is_head = (n->flags & KT_NODE_HEAD) != 0;
    }
    m->n_refs = g->n_params;
    return KT_OK;
}

static kt_status make_mirrors(kt_model *m, const kt_model *share, kt_err *err) {
    kt_graph *g = &m->g;
    if (share) {
        m->host_params = share->host_params;
        m->host_state = share->host_state;
        return KT_OK;
    }
    if (g->backend->device == KT_CPU) {
        m->host_params = g->param_buf;
        m->host_state = g->state_buf;
        return KT_OK;
    }
    m->own_mirrors = 1;
    m->host_params = calloc((size_t)g->n_param_elems + 1, sizeof(float));
    m->host_state = calloc((size_t)g->n_buffer_elems + 1, sizeof(float));
    if (!m->host_params || !m->host_state) return kt_err_set(err, KT_ERR_NOMEM, "no memory for host copies of the parameters");
    return KT_OK;
}

kt_status kt_model_create(kt_model *m, const kt_model_opts *o, const kt_model *share, kt_err *err) {
    memset(m, 0, sizeof *m);
    m->o = *o;
    if (!o->arch || !kt_model_arch_known(o->arch)) {
        char names[512];
        kt_model_arch_names(names, sizeof names);
        return kt_err_set(err, KT_ERR_ARG, "unknown model '%s' (known: %s)", o->arch ? o->arch : "", names);
    }
    int mult = kt_model_size_multiple(o->arch);
    if (o->img_h < mult || o->img_w < mult || o->img_h % mult || o->img_w % mult)
        return kt_err_set(err, KT_ERR_ARG, "image size %dx%d: %s needs both sides to be positive multiples of %d", o->img_h, o->img_w,
                          o->arch, mult);
    if (o->batch < 1) return kt_err_set(err, KT_ERR_ARG, "batch size %d must be at least 1", o->batch);
    if (o->num_classes < 1) return kt_err_set(err, KT_ERR_ARG, "%d classes: need at least 1", o->num_classes);
    kt_status s = kt_graph_init(&m->g, err);
    if (s) return s;
    kt_graph *g = &m->g;
    g->recompute = o->recompute;
    g->training = o->train; /* inference graphs: no dropout, BatchNorm on running statistics */
    const kt_convnext_cfg *cfg = kt_convnext_find(o->arch);
    snprintf(m->arch, sizeof m->arch, "%s", cfg ? cfg->name : o->arch);
    m->o.arch = m->arch;
    m->input = kt_input(g, "input", KT_F32, 4, (int64_t[]){o->batch, o->img_h, o->img_w, 3});
    if (cfg) {
        kt_convnext_opts co = {.num_classes = o->num_classes, .drop_path_rate = o->train ? o->drop_path_rate : 0,
                               .head_drop_rate = o->train ? o->head_drop_rate : 0, .ls_init = 1e-6f};
        m->logits = kt_convnext_build(g, cfg, &co, m->input);
    } else {
        m->logits = kt_smallcnn_build(g, o->num_classes, o->train ? o->head_drop_rate : 0, m->input);
    }
    for (int i = 0; i < g->n_nodes && !m->features; i++)
        if (!strcmp(g->nodes[i]->name, "features")) m->features = g->nodes[i];
    if (o->gradcam && !o->train) {
        m->onehot = kt_input(g, "onehot", KT_F32, 2, (int64_t[]){o->batch, o->num_classes});
        if (m->features) m->features->flags |= KT_NODE_KEEP_GRAD;
        m->loss = kt_sum(g, kt_mul(g, m->logits, m->onehot), 1.0f);
        s = kt_graph_backward(g, m->loss, err);
    } else if (o->train) {
        if (o->multilabel) {
            m->labels = kt_input(g, "targets", KT_F32, 2, (int64_t[]){o->batch, o->num_classes});
            m->loss = kt_bce_logits(g, m->logits, m->labels);
        } else {
            m->labels = kt_input(g, "labels", KT_I32, 1, (int64_t[]){o->batch});
            m->loss = kt_softmax_ce(g, m->logits, m->labels, o->label_smoothing);
        }
        kt_keep(m->loss);
        s = kt_graph_backward(g, m->loss, err);
    } else {
        s = kt_graph_status(g, err);
    }
    if (!s) s = kt_graph_plan(g, o->backend, share ? &share->g : NULL, err);
    if (!s) s = make_mirrors(m, share, err);
    if (!s) s = build_refs(m, err);
    if (s) {
        kt_err_prefix(err, "building %s: ", m->arch);
        kt_model_free(m);
    }
    return s;
}

void kt_model_free(kt_model *m) {
    if (!m) return;
    kt_graph_free(&m->g);
    free(m->refs);
    if (m->own_mirrors) {
        free(m->host_params);
        free(m->host_state);
    }
    memset(m, 0, sizeof *m);
}

kt_status kt_model_init_weights(kt_model *m, uint64_t seed, kt_err *err) {
    kt_rng rng;
    kt_rng_seed(&rng, seed);
    if (kt_convnext_find(m->arch)) kt_convnext_init(&m->g, m->host_params, 1e-6f, &rng);
    else kt_smallcnn_init(&m->g, m->host_params, m->host_state, &rng);
    return m->g.params_shared ? KT_OK : kt_model_upload_params(m, err);
}

static kt_status xfer(kt_model *m, int up, kt_err *err) {
    kt_graph *g = &m->g;
    kt_backend *be = g->backend;
    if (be->device == KT_CPU) return KT_OK;
    size_t pb = (size_t)g->n_param_elems * sizeof(float), sb = (size_t)g->n_buffer_elems * sizeof(float);
    kt_status s = KT_OK;
    /* a graph sharing another's parameters moves them through the owner */
    if (g->params_shared) return kt_err_set(err, KT_ERR_STATE, "move parameters through the model that owns them");
    float *dp = g->param_buf;
    if (pb) s = up ? be->upload(be, dp, m->host_params, pb, err) : be->download(be, m->host_params, dp, pb, err);
    if (!s && sb) s = up ? be->upload(be, g->state_buf, m->host_state, sb, err) : be->download(be, m->host_state, g->state_buf, sb, err);
    return s;
}

kt_status kt_model_upload_params(kt_model *m, kt_err *err) { return xfer(m, 1, err); }
kt_status kt_model_download_params(kt_model *m, kt_err *err) { return xfer(m, 0, err); }

static kt_status put(const kt_model *m, kt_node *n, const void *src, size_t bytes, kt_err *err) {
    kt_backend *be = m->g.backend;
    if (!n) return kt_err_set(err, KT_ERR_STATE, "this model has no such input (built without training?)");
    return be->upload(be, n->data, src, bytes, err);
}

kt_status kt_model_set_input(kt_model *m, const float *x, kt_err *err) { return put(m, m->input, x, kt_node_bytes(m->input), err); }

kt_status kt_model_set_labels(kt_model *m, const int32_t *y, kt_err *err) {
    if (m->o.multilabel) return kt_err_set(err, KT_ERR_STATE, "a multi-label model takes targets, not class labels");
    return put(m, m->labels, y, m->labels ? kt_node_bytes(m->labels) : 0, err);
}

kt_status kt_model_set_targets(kt_model *m, const float *t, kt_err *err) {
    if (!m->o.multilabel) return kt_err_set(err, KT_ERR_STATE, "a single-label model takes class labels, not targets");
    return put(m, m->labels, t, m->labels ? kt_node_bytes(m->labels) : 0, err);
}

kt_status kt_model_get_logits(const kt_model *m, float *out, kt_err *err) {
    kt_backend *be = m->g.backend;
    return be->download(be, out, m->logits->data, kt_node_bytes(m->logits), err);
}

kt_status kt_model_get_loss(const kt_model *m, float *out, kt_err *err) {
    if (!m->loss) return kt_err_set(err, KT_ERR_STATE, "this model was built without a loss");
    kt_backend *be = m->g.backend;
    return be->download(be, out, m->loss->data, sizeof(float), err);
}

int64_t kt_model_param_count(const kt_model *m) { return m->g.n_param_elems; }

kt_status kt_model_load_weights(kt_model *m, const char *path, int finetune, kt_load_report *rep, kt_err *err) {
    kt_status s = kt_model_load(path, NULL, m->refs, m->n_refs, finetune ? KT_LOAD_FINETUNE : KT_LOAD_STRICT, rep, err);
    return s ? s : kt_model_upload_params(m, err);
}

kt_status kt_model_save_weights(const kt_model *m, const char *path, kt_ckpt_meta *meta, kt_err *err) {
    kt_ckpt_meta local;
    kt_ckpt_meta *md = meta;
    if (!md) {
        kt_ckpt_meta_init(&local);
        md = &local;
    }
    kt_status s = kt_ckpt_meta_set_arch(md, m->arch, err);
    if (!s) md->n_classes = md->n_classes ? md->n_classes : m->o.num_classes;
    if (!s && !md->img_h) {
        md->img_h = m->o.img_h;
        md->img_w = m->o.img_w;
    }
    if (!s) s = kt_model_save(path, m->refs, m->n_refs, KT_ST_F32, md, err);
    if (md == &local) kt_ckpt_meta_free(&local);
    return s;
}
