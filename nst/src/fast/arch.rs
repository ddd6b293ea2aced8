//! The architecture tables of the three feed-forward style networks: every convolution in
//! forward order with its kernel, stride, padding, groups, normalisation and activation, so the
//! network code needs no ONNX at run time. The converter ([`super::convert`]) checks each entry
//! against the conv node of the source ONNX graph (kernel, stride, groups, dilation 1, the conv's
//! own zero pads, weight and bias shapes).
//!
//! One layer `l` applied to `x` (NCHW) computes, in this order:
//! 1. `before`: nothing, nearest-neighbour ×2 upsampling, or global average pooling (→ N×C×1×1);
//! 2. `pad`: reflect padding by `p` on all four sides (PyTorch `ReflectionPad2d`: the edge pixel
//!    is not repeated), or zero padding (top, left, bottom, right);
//! 3. a conv2d with weight `[out, in/groups, k, k]` (OIHW), `stride`, `groups`, plus the bias if
//!    `bias`;
//! 4. `norm`: none; conditional instance norm (multistyle26: γ = s·gamma, β = s·beta with the
//!    26-vector s of style weights, `gamma`/`beta` `[26, out]`); or StyleNorm (arbitrary
//!    transform: γ = Wγ·v + bγ, β = Wβ·v + bβ with the 100-d style vector v, W `[out, 100]`).
//!    Both are IN(x) = (x − μ)/√(σ² + 1e-5)·γ + β with μ and the biased σ² per channel over H×W;
//! 5. `act`: none, ReLU, ReLU6 (min(max(x, 0), 6)) or sigmoid;
//! 6. `add_input_of: Some(j)`: adds the tensor that was the *input* of layer `j` (a residual).
//!
//! Sources: Dumoulin, Shlens & Kudlur, "A Learned Representation for Artistic Style" (ICLR 2017);
//! Ghiasi et al., "Exploring the structure of a real-time, arbitrary neural artistic stylization
//! network" (BMVC 2017); Sandler et al., "MobileNetV2" (CVPR 2018) for the style predictor.

use std::sync::OnceLock;

/// Padding before a conv.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pad {
    /// Reflect padding by this many pixels on every side.
    Reflect(usize),
    /// Zero padding (top, left, bottom, right): TensorFlow "SAME" is (0, 0, 1, 1) for a 3×3
    /// stride-2 conv on an even-sized input (the predictor's stride-2 layers; the ONNX graph
    /// fixes these pads, exact for the 256×256 input) and (1, 1, 1, 1) at stride 1.
    Zero {
        top: usize,
        left: usize,
        bottom: usize,
        right: usize,
    },
}

impl Pad {
    const NONE: Pad = Pad::Zero {
        top: 0,
        left: 0,
        bottom: 0,
        right: 0,
    };
    const SAME1: Pad = Pad::Zero {
        top: 1,
        left: 1,
        bottom: 1,
        right: 1,
    };
    const SAME2: Pad = Pad::Zero {
        top: 0,
        left: 0,
        bottom: 1,
        right: 1,
    };

    /// ONNX `pads` of the conv itself: `[top, left, bottom, right]` for zero padding, zeros for
    /// reflect padding (a separate Pad node).
    pub fn onnx_pads(self) -> [i64; 4] {
        match self {
            Pad::Reflect(_) => [0; 4],
            Pad::Zero {
                top,
                left,
                bottom,
                right,
            } => [top, left, bottom, right].map(|p| p as i64),
        }
    }
}

/// Normalisation after a conv (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    /// None.
    None,
    /// Conditional instance norm: tensors `{name}.norm.gamma`, `{name}.norm.beta`, `[26, out]`.
    Conditional,
    /// StyleNorm: tensors `{name}.norm.gamma.w`/`.norm.beta.w` `[out, 100]` and
    /// `{name}.norm.gamma.b`/`.norm.beta.b` `[out]`.
    Style,
}

/// Activation after the norm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    None,
    Relu,
    /// min(max(x, 0), 6).
    Relu6,
    Sigmoid,
}

/// What happens to a layer's input before its padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Before {
    None,
    /// Nearest-neighbour ×2 upsampling (each pixel repeated 2×2).
    Upsample2,
    /// Mean over H×W (the predictor's head: N×C×H×W → N×C×1×1).
    GlobalAvgPool,
}

/// One convolution layer of a network, in forward order. Its tensors are `{name}.w`
/// (`[out_channels, in_channels / groups, kernel, kernel]`), `{name}.b` (`[out_channels]`) if
/// `bias`, and the norm's (see [`Norm`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ConvSpec {
    /// Our tensor-name prefix, e.g. `contract.0`, `predict.conv.3`, `transform.res.2.1`.
    pub name: String,
    /// The ONNX initializer the conv's weight comes from (the float weight, or the int8 weight
    /// behind its DequantizeLinear).
    pub source: String,
    /// For StyleNorm: the `style_params/…/StyleNorm` prefix of the γ (`Conv_1`) and β (`Conv`)
    /// projections in the ONNX graph; empty otherwise.
    pub norm_source: String,
    pub in_channels: usize,
    pub out_channels: usize,
    /// Square kernel side (1, 3 or 9).
    pub kernel: usize,
    pub stride: usize,
    pub pad: Pad,
    /// 1, or `in_channels` for a depthwise conv.
    pub groups: usize,
    pub bias: bool,
    pub norm: Norm,
    pub act: Act,
    pub before: Before,
    /// A residual: add the input of layer `j` after this layer's activation.
    pub add_input_of: Option<usize>,
}

impl ConvSpec {
    fn new(name: String, source: String, cin: usize, cout: usize, k: usize) -> ConvSpec {
        ConvSpec {
            name,
            source,
            norm_source: String::new(),
            in_channels: cin,
            out_channels: cout,
            kernel: k,
            stride: 1,
            pad: if k == 1 {
                Pad::NONE
            } else {
                Pad::Reflect(k / 2)
            },
            groups: 1,
            bias: false,
            norm: Norm::None,
            act: Act::Relu,
            before: Before::None,
            add_input_of: None,
        }
    }

    /// OIHW shape of `{name}.w`.
    pub fn weight_shape(&self) -> [usize; 4] {
        [
            self.out_channels,
            self.in_channels / self.groups,
            self.kernel,
            self.kernel,
        ]
    }
}

/// Channels of the style vector the arbitrary networks exchange.
pub const STYLE_DIM: usize = 100;
/// Built-in styles of multistyle26.
pub const N_STYLES: usize = 26;

/// multistyle26: 18 layers. contract 9×9 3→32, 3×3/2 32→32 twice; 6 residual blocks (3×3 32→32
/// conv + CIN + ReLU, conv + CIN, + block input); expand: up×2 3×3 32→8, up×2 3×3 8→4, 9×9
/// 4→3 + CIN + sigmoid. Reflect padding k/2, no biases, every layer conditionally normalised.
/// Input 1×3×H×W in 0..1 (H, W multiples of 4), output 1×3×H×W in 0..1.
pub fn multistyle26_layers() -> &'static [ConvSpec] {
    static L: OnceLock<Vec<ConvSpec>> = OnceLock::new();
    L.get_or_init(|| {
        let mut v = Vec::new();
        let add = |v: &mut Vec<ConvSpec>, name: String, cin, cout, k, stride| {
            let mut c = ConvSpec::new(name.clone(), format!("{name}.w"), cin, cout, k);
            c.stride = stride;
            c.norm = Norm::Conditional;
            v.push(c);
            v.len() - 1
        };
        add(&mut v, "contract.0".into(), 3, 32, 9, 1);
        add(&mut v, "contract.1".into(), 32, 32, 3, 2);
        add(&mut v, "contract.2".into(), 32, 32, 3, 2);
        let mut res = Vec::new();
        for i in 0..6 {
            let a = add(&mut v, format!("res.{i}.0"), 32, 32, 3, 1);
            res.push((a, add(&mut v, format!("res.{i}.1"), 32, 32, 3, 1)));
        }
        let e0 = add(&mut v, "expand.0".into(), 32, 8, 3, 1);
        let e1 = add(&mut v, "expand.1".into(), 8, 4, 3, 1);
        let e2 = add(&mut v, "expand.2".into(), 4, 3, 9, 1);
        for (a, b) in res {
            v[b].act = Act::None;
            v[b].add_input_of = Some(a);
        }
        v[e0].before = Before::Upsample2;
        v[e1].before = Before::Upsample2;
        v[e2].act = Act::Sigmoid;
        v
    })
}

/// MobileNetV2 inverted-residual blocks after the stem: (expansion, output channels, stride).
const MOBILENET_V2_BLOCKS: [(usize, usize, usize); 17] = [
    (1, 16, 1),
    (6, 24, 2),
    (6, 24, 1),
    (6, 32, 2),
    (6, 32, 1),
    (6, 32, 1),
    (6, 64, 2),
    (6, 64, 1),
    (6, 64, 1),
    (6, 64, 1),
    (6, 96, 1),
    (6, 96, 1),
    (6, 96, 1),
    (6, 160, 2),
    (6, 160, 1),
    (6, 160, 1),
    (6, 320, 1),
];

/// The style predictor (MobileNetV2, depth multiplier 1): 53 convs `predict.conv.0` …
/// `predict.conv.52`, all with bias (batch norm folded in). Stem 3×3/2 3→32 ReLU6; 17 blocks
/// (`expanded_conv`, `expanded_conv_1` … `_16`): [1×1 expand ReLU6 (not in block 0)], 3×3
/// depthwise (groups = channels) ReLU6, 1×1 project (no activation) + the block input when the
/// stride is 1 and the channels agree; `Conv_1` 1×1 320→1280 ReLU6; global average pool; 1×1
/// 1280→100 (no activation): the style vector. Zero padding only (TF SAME, see [`Pad::Zero`]).
/// Input 1×3×256×256 in 0..1 (the ONNX file takes NHWC; transpose), output 1×100×1×1.
pub fn predict_layers() -> &'static [ConvSpec] {
    static L: OnceLock<Vec<ConvSpec>> = OnceLock::new();
    L.get_or_init(|| {
        let mut v: Vec<ConvSpec> = Vec::new();
        let add = |v: &mut Vec<ConvSpec>, source: &str, cin, cout, k, stride, groups, act| {
            let name = format!("predict.conv.{}", v.len());
            let mut c = ConvSpec::new(name, format!("MobilenetV2/{source}"), cin, cout, k);
            c.stride = stride;
            c.groups = groups;
            c.bias = true;
            c.act = act;
            c.pad = match (k, stride) {
                (1, _) => Pad::NONE,
                (_, 1) => Pad::SAME1,
                _ => Pad::SAME2,
            };
            v.push(c);
            v.len() - 1
        };
        add(&mut v, "Conv/weights", 3, 32, 3, 2, 1, Act::Relu6);
        let mut cin = 32;
        for (i, &(t, cout, s)) in MOBILENET_V2_BLOCKS.iter().enumerate() {
            let b = if i == 0 {
                "expanded_conv".to_string()
            } else {
                format!("expanded_conv_{i}")
            };
            let hidden = cin * t;
            let first = if t == 1 {
                None
            } else {
                Some(add(
                    &mut v,
                    &format!("{b}/expand/weights"),
                    cin,
                    hidden,
                    1,
                    1,
                    1,
                    Act::Relu6,
                ))
            };
            let dw = add(
                &mut v,
                &format!("{b}/depthwise/depthwise_weights"),
                hidden,
                hidden,
                3,
                s,
                hidden,
                Act::Relu6,
            );
            let p = add(
                &mut v,
                &format!("{b}/project/weights"),
                hidden,
                cout,
                1,
                1,
                1,
                Act::None,
            );
            if s == 1 && cin == cout {
                v[p].add_input_of = Some(first.unwrap_or(dw));
            }
            cin = cout;
        }
        add(&mut v, "Conv_1/weights", 320, 1280, 1, 1, 1, Act::Relu6);
        let head = add(&mut v, "", 1280, STYLE_DIM, 1, 1, 1, Act::None);
        v[head].source = "mobilenet_conv/Conv/weights".into();
        v[head].before = Before::GlobalAvgPool;
        v
    })
}

/// The arbitrary-style transformer (Ghiasi et al., the 8/16/32-channel variant): 16 layers.
/// contract: 9×9 3→8, 3×3/2 8→16, 3×3/2 16→32, each with bias + ReLU (no norm); 5 residual
/// blocks `transform.res.{0..4}.{0,1}` (3×3 32→32 + StyleNorm + ReLU, 3×3 + StyleNorm, + block
/// input); expand: up×2 3×3 32→16, up×2 3×3 16→8 (StyleNorm + ReLU), 9×9 8→3 + StyleNorm +
/// sigmoid. Reflect padding k/2; every conv has a bias (zero for the residual convs and
/// expand.0, and cancelled by the StyleNorm after it anyway). Input 1×3×H×W in 0..1 (H, W
/// multiples of 4; the ONNX file takes NHWC) and the 100-d style vector; output 1×3×H×W.
pub fn transform_layers() -> &'static [ConvSpec] {
    static L: OnceLock<Vec<ConvSpec>> = OnceLock::new();
    L.get_or_init(|| {
        let mut v: Vec<ConvSpec> = Vec::new();
        let add = |v: &mut Vec<ConvSpec>, name: &str, tf: &str, cin, cout, k, stride, norm| {
            let mut c = ConvSpec::new(
                format!("transform.{name}"),
                format!("transformer/{tf}/weights"),
                cin,
                cout,
                k,
            );
            c.stride = stride;
            c.bias = true;
            c.norm = norm;
            if norm == Norm::Style {
                c.norm_source = format!("style_params/transformer/{tf}/StyleNorm");
            }
            v.push(c);
            v.len() - 1
        };
        add(
            &mut v,
            "contract.0",
            "contract/conv1",
            3,
            8,
            9,
            1,
            Norm::None,
        );
        add(
            &mut v,
            "contract.1",
            "contract/conv2",
            8,
            16,
            3,
            2,
            Norm::None,
        );
        add(
            &mut v,
            "contract.2",
            "contract/conv3",
            16,
            32,
            3,
            2,
            Norm::None,
        );
        for i in 0..5 {
            let r = format!("residual/residual{}", i + 1);
            let a = add(
                &mut v,
                &format!("res.{i}.0"),
                &format!("{r}/conv1"),
                32,
                32,
                3,
                1,
                Norm::Style,
            );
            let b = add(
                &mut v,
                &format!("res.{i}.1"),
                &format!("{r}/conv2"),
                32,
                32,
                3,
                1,
                Norm::Style,
            );
            v[b].act = Act::None;
            v[b].add_input_of = Some(a);
        }
        let e0 = add(
            &mut v,
            "expand.0",
            "expand/conv1/conv",
            32,
            16,
            3,
            1,
            Norm::Style,
        );
        let e1 = add(
            &mut v,
            "expand.1",
            "expand/conv2/conv",
            16,
            8,
            3,
            1,
            Norm::Style,
        );
        let e2 = add(
            &mut v,
            "expand.2",
            "expand/conv3/conv",
            8,
            3,
            9,
            1,
            Norm::Style,
        );
        v[e0].before = Before::Upsample2;
        v[e1].before = Before::Upsample2;
        v[e2].act = Act::Sigmoid;
        v
    })
}
