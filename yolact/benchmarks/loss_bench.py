"""The criterion alone, forward + backward, per term and in total."""
import torch

from yolact.build import build_criterion, build_model
from yolact.utils.synthetic import outputs_from_leaves, synthetic_outputs, synthetic_targets
from yolact.utils.timing import time_median_ms

__all__ = ["bench_loss"]


def bench_loss(args, device, config_for):
    config = config_for(args)
    batch = args.batch or 8
    generator = torch.Generator().manual_seed(0)
    model = build_model(config, pretrained=None).eval()
    with torch.no_grad():
        probe = model(torch.zeros(1, 3, args.size, args.size))
    anchors = probe["anchors"].to(device)
    proto_size = probe["prototypes"].shape[1]
    semseg_size = (args.size + 7) // 8
    criterion = build_criterion(config).to(device)
    targets = [{k: (v.to(device) if torch.is_tensor(v) else v) for k, v in t.items()}
               for t in synthetic_targets(batch, args.objects, args.size, args.classes, generator)]
    _, leaves = synthetic_outputs(batch, anchors.shape[0], args.classes, proto_size, probe["prototypes"].shape[3],
                                  semseg_size, generator, anchors)
    leaves = [leaf.detach().to(device).requires_grad_(True) for leaf in leaves]

    def fresh_outputs():
        return outputs_from_leaves(leaves, anchors)

    def forward_backward(term=None):
        losses = criterion(fresh_outputs(), targets)
        (losses[term] if term else sum(losses.values())).backward()

    rows = []
    for term in [None, "loss_cls", "loss_box", "loss_mask", "loss_semseg"]:
        ms = time_median_ms(lambda: forward_backward(term), repeats=args.repeats, warmup=args.warmup, device=device)
        rows.append({"measure": f"forward+backward of {term or 'all terms (total)'}", "batch": batch,
                     "anchors": anchors.shape[0], "median_ms": ms})
    with torch.no_grad():
        outputs = fresh_outputs()
        rows.append({"measure": "forward only (all terms)", "batch": batch, "anchors": anchors.shape[0],
                     "median_ms": time_median_ms(lambda: criterion(outputs, targets), repeats=args.repeats,
                                                 warmup=args.warmup, device=device)})
    notes = [f"{args.objects} objects per image; a term's row still computes the whole forward, only its backward "
             "differs; each run includes the tanh/relu that make coefficients and prototypes"]
    return rows, ["measure", "batch", "anchors", "median_ms"], notes
