// The emulator's launch machinery, CUDA runtime calls on host memory, and kernels/cuda/runtime.cu's
// functions (one emulated device). Device memory starts as 0xcd bytes, as real memory is garbage.
#include <barrier>
#include <memory>
#include <thread>
#include <vector>

#include "kernels/cuda/kt_cuda.h"
#include "cuemu.h"

thread_local emu_uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

struct Warp {
    std::unique_ptr<std::barrier<>> bar;
    double buf[32];
};
struct Block {
    std::unique_ptr<std::barrier<>> bar;
    std::vector<Warp> warps;
};
static thread_local Block *cur_block;
static thread_local int cur_lid;
static int cur_coop;

void __syncthreads() {
    if (!cur_coop) { fprintf(stderr, "EMU: __syncthreads in a kernel launched as sequential\n"); abort(); }
    cur_block->bar->arrive_and_wait();
}

template <class T> static T shfl(T v, int o) {
    if (!cur_coop) { fprintf(stderr, "EMU: shuffle in a kernel launched as sequential\n"); abort(); }
    Warp &w = cur_block->warps[cur_lid / 32];
    int lane = cur_lid % 32;
    double d = 0;
    memcpy(&d, &v, sizeof v);
    w.buf[lane] = d;
    w.bar->arrive_and_wait();
    double r = w.buf[lane ^ o];
    w.bar->arrive_and_wait();
    T out;
    memcpy(&out, &r, sizeof out);
    return out;
}
float __shfl_xor_sync(unsigned, float v, int o) { return shfl(v, o); }
double __shfl_xor_sync(unsigned, double v, int o) { return shfl(v, o); }

void emu_launch(dim3 grid, dim3 block, int coop, std::function<void()> body) {
    gridDim = grid;
    blockDim = block;
    cur_coop = coop;
    int nt = block.x * block.y * block.z;
    if (nt > 1024 || grid.y > 65535 || grid.z > 65535 || nt < 1) { fprintf(stderr, "EMU: bad launch %u %u %u / %u %u %u\n", grid.x, grid.y, grid.z, block.x, block.y, block.z); abort(); }
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                emu_uint3 bi = {bx, by, bz};
                if (!coop) {
                    blockIdx = bi;
                    for (int t = 0; t < nt; t++) {
                        threadIdx = {(unsigned)(t % block.x), (unsigned)((t / block.x) % block.y), (unsigned)(t / (block.x * block.y))};
                        body();
                    }
                    continue;
                }
                Block b;
                b.bar = std::make_unique<std::barrier<>>(nt);
                int nw = (nt + 31) / 32;
                b.warps.resize(nw);
                for (int w = 0; w < nw; w++) b.warps[w].bar = std::make_unique<std::barrier<>>(w == nw - 1 ? nt - 32 * w : 32);
                std::vector<std::thread> th;
                for (int t = 0; t < nt; t++)
                    th.emplace_back([&, t] {
                        blockIdx = bi;
                        threadIdx = {(unsigned)(t % block.x), (unsigned)((t / block.x) % block.y), (unsigned)(t / (block.x * block.y))};
                        cur_block = &b;
                        cur_lid = t;
                        body();
                        b.warps[t / 32].bar->arrive_and_drop();
                        b.bar->arrive_and_drop();
                    });
                for (auto &x : th) x.join();
            }
}

cudaError_t cudaGetLastError() { return 0; }
const char *cudaGetErrorString(cudaError_t e) { return e ? "emu error" : "no error"; }
const char *cudaGetErrorName(cudaError_t e) { return e ? "emuError" : "cudaSuccess"; }
cudaError_t cudaMalloc(void **p, size_t n) {
    *p = malloc(n ? n : 1);
    if (!*p) return cudaErrorMemoryAllocation;
    memset(*p, 0xcd, n); /* device memory starts as garbage */
    return 0;
}
cudaError_t cudaFree(void *p) { free(p); return 0; }
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind) { memmove(d, s, n); return 0; }
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind, cudaStream_t) { memmove(d, s, n); return 0; }
cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t) { memset(d, v, n); return 0; }
cudaError_t cudaMemset(void *d, int v, size_t n) { memset(d, v, n); return 0; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return 0; }
cudaError_t cudaDeviceSynchronize() { return 0; }
cudaError_t cudaSetDevice(int) { return 0; }
cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return 0; }
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr, int) { *v = 132; return 0; }
cudaError_t cudaMemGetInfo(size_t *f, size_t *t) { *f = 1ull << 34; *t = 1ull << 36; return 0; }

/* runtime.cu replacements */
extern "C" void kt_cuda_query(kt_cuda_info *info) {
    memset(info, 0, sizeof *info);
    info->device_count = 1;
    snprintf(info->name, sizeof info->name, "host emulator");
    info->cc_major = 9;
}
extern "C" int kt_cuda_available(void) { return 1; }
extern "C" int kt_cuda_malloc(void **ptr, size_t bytes, char *, size_t) { return cudaMalloc(ptr, bytes); }
extern "C" void kt_cuda_free(void *ptr) { free(ptr); }
extern "C" int kt_cuda_memcpy_h2d(void *d, const void *s, size_t n, char *, size_t) { memmove(d, s, n); return 0; }
extern "C" int kt_cuda_memcpy_d2h(void *d, const void *s, size_t n, char *, size_t) { memmove(d, s, n); return 0; }
extern "C" int kt_cuda_memcpy_d2d(void *d, const void *s, size_t n, char *, size_t) { memmove(d, s, n); return 0; }
extern "C" int kt_cuda_memset(void *d, int v, size_t n, char *, size_t) { memset(d, v, n); return 0; }
extern "C" int kt_cuda_sync(char *, size_t) { return 0; }
