"""What torch.compile keeps for a chunked cross-entropy, against eager mode (real CPU tensors, torch 2.13).

Run:  python bench/compile_loss.py
Eager ``F.cross_entropy(chunk.float())`` saves the fp32 log-probabilities (4 bytes per logit, seen twice by the
hooks: log_softmax's and nll_loss's backward share it); compiled, the fused graph saves the 16-bit logits it was
given (2 bytes) and one fp32 log-sum-exp per row. Measured 2026-11-29: eager 8.00, compiled 2.00 bytes per logit
as the hooks count them. This is what ``--compile`` models for the loss head (docs/accuracy.md).
"""
import torch
import torch.nn.functional as F
torch.manual_seed(0)
V, T, C = 32000, 2048, 8
def ce(chunks, labels):
    total = 0.0
    for c, lab in zip(chunks, labels.chunk(len(chunks))):
        total = total + F.cross_entropy(c.float(), lab, reduction="sum")
    return total / labels.numel()
for compiled in (False, True):
    fn = torch.compile(ce) if compiled else ce
    logits = torch.randn(T, V, dtype=torch.bfloat16, requires_grad=True)
    labels = torch.randint(0, V, (T,))
    saved = []
    def pack(t):
        saved.append((tuple(t.shape), t.dtype, t.numel() * t.element_size()))
        return t
    for it in range(2):
        saved.clear()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = fn(list(logits.chunk(C)), labels)
        loss.backward()
    tot = sum(s[2] for s in saved)
    print("compiled" if compiled else "eager", f"saved {tot/ (T*V):.2f} bytes per logit;", sorted({(s[0], str(s[1])) for s in saved})[:6])
