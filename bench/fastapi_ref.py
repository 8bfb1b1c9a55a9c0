#!/usr/bin/env python3
"""The stack we replace, for bench/serve_compare.sh: a FastAPI + PyTorch + timm server with the two
endpoints the load test drives, GET /history and POST /predict, over SQLite, as the original
Keratrack back end serves them (../shared/API.md). It is deliberately lighter than ours, so that the
comparison errs in PyTorch's favour: the bearer token is compared with one stored string (no JWT
signature check, no user lookup), and /predict returns the stage, confidence and probabilities
without the diet plan.

  .venv/bin/python bench/fastapi_ref.py --model CKPT.safetensors --db DB --port N [--threads 2]

The model is any `keratrack train` checkpoint: its tensors carry timm's names, so timm's
create_model(arch) loads them as they are; class names, image size, mean and std come from its
metadata. Prints "listening on http://127.0.0.1:PORT" and "token TOKEN" once ready.
"""
import argparse
import io
import json
import os
import secrets
import sqlite3
import sys
import threading
import time

import numpy as np
import timm
import torch
import uvicorn
from fastapi import FastAPI, File, Header, HTTPException, UploadFile
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file


def load_model(path):
    with safe_open(path, "pt") as f:
        meta = f.metadata() or {}
    arch = meta.get("architecture") or meta.get("arch")
    classes = json.loads(meta["class_names"]) if "class_names" in meta else json.loads(meta["classes"])
    size = json.loads(meta.get("image_size", "224"))
    size = int(size[0] if isinstance(size, list) else size)
    mean = json.loads(meta["mean"]) if "mean" in meta else [0.485, 0.456, 0.406]
    std = json.loads(meta["std"]) if "std" in meta else [0.229, 0.224, 0.225]
    model = timm.create_model(arch, pretrained=False, num_classes=len(classes))
    model.load_state_dict(load_file(path), strict=True)
    model.eval()
    return model, classes, size, np.array(mean, np.float32), np.array(std, np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--port", type=int, default=8001)
    ap.add_argument("--threads", type=int, default=2, help="PyTorch intra-op threads")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model, classes, size, mean, std = load_model(a.model)
    token = secrets.token_hex(16)
    lock = threading.Lock()  # one SQLite connection shared by the threadpool, as a simple app does
    db = sqlite3.connect(a.db, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS assessments (id INTEGER PRIMARY KEY, user_id INTEGER, stage TEXT, "
               "confidence REAL, probabilities TEXT, image_name TEXT, created_at TEXT)")
    db.commit()
    app = FastAPI()

    def auth(authorization):
        if authorization != f"Bearer {token}":
            raise HTTPException(status_code=401, detail="Not authenticated")

    @app.get("/history")
    def history(authorization: str = Header(None)):
        auth(authorization)
        with lock:
            rows = db.execute("SELECT id, stage, confidence, probabilities, image_name, created_at FROM assessments "
                              "WHERE user_id = 1 ORDER BY id DESC LIMIT 20").fetchall()
        return [{"id": r[0], "stage": r[1], "confidence": r[2], "probabilities": json.loads(r[3]), "image_name": r[4],
                 "created_at": r[5]} for r in rows]

    @app.post("/predict")
    def predict(file: UploadFile = File(...), authorization: str = Header(None)):
        auth(authorization)
        try:
            im = Image.open(io.BytesIO(file.file.read())).convert("RGB")
        except Exception as e:
            raise HTTPException(status_code=400, detail=f"not an image: {e}")
        x = (np.asarray(im.resize((size, size), Image.BILINEAR), np.float32) / 255.0 - mean) / std
        with torch.inference_mode():
            p = torch.softmax(model(torch.from_numpy(x).permute(2, 0, 1)[None]), 1)[0].numpy()
        k = int(p.argmax())
        probs = {c: float(v) for c, v in zip(classes, p)}
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with lock:
            cur = db.execute("INSERT INTO assessments (user_id, stage, confidence, probabilities, image_name, created_at) "
                             "VALUES (1, ?, ?, ?, ?, ?)", (classes[k], float(p[k]), json.dumps(probs), file.filename, now))
            db.commit()
        return {"id": cur.lastrowid, "stage": classes[k], "confidence": float(p[k]), "probabilities": probs,
                "created_at": now}

    print(f"token {token}", flush=True)
    config = uvicorn.Config(app, host="127.0.0.1", port=a.port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    print(f"listening on http://127.0.0.1:{a.port}", flush=True)
    server.run()


if __name__ == "__main__":
    sys.exit(main())
