#include "resnet/quantized_resnet.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>
#include <variant>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/quantized/PackedParams.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/jit/passes/freeze_module.h>
#include <torch/custom_class.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_join.h"
#include "common/torchscript_resolver.h"

namespace dlspeed {
namespace {

using ConvPacked = c10::intrusive_ptr<ConvPackedParamsBase<2>>;
using LinearPacked = c10::intrusive_ptr<LinearPackedParamsBase>;

// The quantized kernels, looked up once through the dispatcher. The C++
// signatures are those the kernels were registered with (typed() checks them).
struct QuantizedOps {
  c10::TypedOperatorHandle<ConvPacked(at::Tensor, std::optional<at::Tensor>, torch::List<int64_t>,
                                      torch::List<int64_t>, torch::List<int64_t>, int64_t)>
      conv2d_prepack;
  c10::TypedOperatorHandle<at::Tensor(at::Tensor, const ConvPacked&, double, int64_t)> conv2d;
  c10::TypedOperatorHandle<at::Tensor(at::Tensor, const ConvPacked&, double, int64_t)> conv2d_relu;
  c10::TypedOperatorHandle<at::Tensor(at::Tensor, at::Tensor, double, int64_t)> add_relu;
  c10::TypedOperatorHandle<LinearPacked(at::Tensor, std::optional<at::Tensor>)> linear_prepack;
  c10::TypedOperatorHandle<at::Tensor(at::Tensor, const LinearPacked&, double, int64_t)> linear;
};

// Throws c10::Error when an operator is missing or has another signature.
const QuantizedOps& Ops() {
  static const QuantizedOps* ops = [] {
    auto& d = c10::Dispatcher::singleton();
    return new QuantizedOps{
        d.findSchemaOrThrow("quantized::conv2d_prepack", "")
            .typed<ConvPacked(at::Tensor, std::optional<at::Tensor>, torch::List<int64_t>,
                              torch::List<int64_t>, torch::List<int64_t>, int64_t)>(),
        d.findSchemaOrThrow("quantized::conv2d", "new")
            .typed<at::Tensor(at::Tensor, const ConvPacked&, double, int64_t)>(),
        d.findSchemaOrThrow("quantized::conv2d_relu", "new")
            .typed<at::Tensor(at::Tensor, const ConvPacked&, double, int64_t)>(),
        d.findSchemaOrThrow("quantized::add_relu", "")
            .typed<at::Tensor(at::Tensor, at::Tensor, double, int64_t)>(),
        d.findSchemaOrThrow("quantized::linear_prepack", "")
            .typed<LinearPacked(at::Tensor, std::optional<at::Tensor>)>(),
        d.findSchemaOrThrow("quantized::linear", "")
            .typed<at::Tensor(at::Tensor, const LinearPacked&, double, int64_t)>(),
    };
  }();
  return *ops;
}

struct EngineInfo {
  const char* name;
  at::QEngine engine;
  bool reduce_range;  // PyTorch's default qconfig for the engine
};
constexpr EngineInfo kEngines[] = {
    {"x86", at::QEngine::X86, true},
    {"fbgemm", at::QEngine::FBGEMM, true},
    {"onednn", at::QEngine::ONEDNN, false},
    {"qnnpack", at::QEngine::QNNPACK, false},
};

const EngineInfo* FindEngine(const std::string& name) {
  for (const EngineInfo& e : kEngines) {
    if (name == e.name) return &e;
  }
  return nullptr;
}

// Selects an engine for a scope and restores the previous one.
class QEngineGuard {
 public:
  explicit QEngineGuard(at::QEngine engine) : previous_(at::globalContext().qEngine()) {
    if (engine != previous_) at::globalContext().setQEngine(engine);
  }
  ~QEngineGuard() {
    if (at::globalContext().qEngine() != previous_) at::globalContext().setQEngine(previous_);
  }

 private:
  at::QEngine previous_;
};

// The quint8 range of one activation, chosen as PyTorch's default qconfig
// does with its HistogramObserver: calibration runs twice, first recording
// the min and max, then a histogram over them; the range kept is the one that
// minimizes the expected squared quantization error (rounding inside it,
// clipping outside), not the whole min..max, whose rare outliers would waste
// most of the 7 or 8 bits (with min/max ranges a ResNet-50 trained one epoch
// lost 25 points of accuracy in int8, 20 with this).
struct RangeObserver {
  static constexpr int64_t kBins = 2048;
  float min = std::numeric_limits<float>::infinity();
  float max = -std::numeric_limits<float>::infinity();
  bool non_finite = false;  // a batch held an inf or NaN (std::min and std::max would skip a NaN)
  at::Tensor histogram;  // kBins counts over [Low(), High()], from the second pass
  double scale = 1.0;
  int64_t zero_point = 0;

  // The range always holds 0, which quint8 represents exactly.
  double Low() const { return std::min(static_cast<double>(min), 0.0); }
  double High() const { return std::max(static_cast<double>(max), 0.0); }

  void Observe(const at::Tensor& t) {
    if (histogram.defined()) {
      histogram += at::histc(t.to(at::kFloat), kBins, Low(), High()).to(at::kDouble);
      return;
    }
    auto [lo_tensor, hi_tensor] = at::aminmax(t);
    const float lo = lo_tensor.item<float>(), hi = hi_tensor.item<float>();
    if (!std::isfinite(lo) || !std::isfinite(hi)) non_finite = true;
    min = std::min(min, lo);
    max = std::max(max, hi);
  }
  // Ends the min/max pass: later Observe calls fill the histogram.
  void StartHistogram() {
    if (std::isfinite(min) && std::isfinite(max) && High() > Low()) histogram = at::zeros({kBins}, at::kDouble);
  }
  void ComputeQParams(bool reduce_range) {
    const int64_t qmin = 0, qmax = reduce_range ? 127 : 255;
    auto [lo, hi] = BestRange(qmax - qmin);
    lo = std::min(lo, 0.0), hi = std::max(hi, 0.0);
    scale = std::max((hi - lo) / static_cast<double>(qmax - qmin),
                     static_cast<double>(std::numeric_limits<float>::epsilon()));
    zero_point = std::clamp<int64_t>(qmin - static_cast<int64_t>(std::nearbyint(lo / scale)), qmin, qmax);
  }

 private:
  // The [lo, hi] with bin edges for ends (holding 0) of least expected error:
  // values inside round with error step^2 / 12, values outside clip to the
  // nearest end. Prefix sums over the bins (count, count * centre,
  // count * centre^2) make each candidate O(1); every pair is tried.
  std::pair<double, double> BestRange(int64_t steps) const {
    if (!histogram.defined() || histogram.sum().item<double>() == 0) return {Low(), High()};
    const double* counts = histogram.data_ptr<double>();
    const double width = (High() - Low()) / kBins;
    std::vector<double> n(kBins + 1, 0), s1(kBins + 1, 0), s2(kBins + 1, 0);
    for (int64_t i = 0; i < kBins; ++i) {
      const double centre = Low() + (i + 0.5) * width;
      n[i + 1] = n[i] + counts[i];
      s1[i + 1] = s1[i] + counts[i] * centre;
      s2[i + 1] = s2[i] + counts[i] * centre * centre;
    }
    // Squared distance to `edge` of the values in bins [from, to).
    auto clipped = [&](int64_t from, int64_t to, double edge) {
      const double count = n[to] - n[from];
      return edge * edge * count - 2 * edge * (s1[to] - s1[from]) + (s2[to] - s2[from]);
    };
    // The bin edge closest to 0: the range's low end is at or below it, its high end at or above.
    const int64_t zero = std::clamp<int64_t>(static_cast<int64_t>(std::llround(-Low() / width)), 0, kBins);
    double best_error = std::numeric_limits<double>::infinity();
    std::pair<double, double> best{Low(), High()};
    for (int64_t start = 0; start <= zero; ++start) {
      const double lo = Low() + start * width;
      for (int64_t end = std::max<int64_t>(zero, start + 1); end <= kBins; ++end) {
        const double hi = Low() + end * width;
        const double step = (hi - lo) / static_cast<double>(steps);
        const double error = (n[end] - n[start]) * step * step / 12 + clipped(0, start, lo) + clipped(end, kBins, hi);
        if (error < best_error) best_error = error, best = {lo, hi};
      }
    }
    return best;
  }
};

// Per-output-channel symmetric qint8 (PyTorch's default_per_channel_weight_observer).
at::Tensor QuantizeWeightPerChannel(const at::Tensor& w) {
  const at::Tensor amax = w.reshape({w.size(0), -1}).abs().amax(/*dim=*/1).to(at::kDouble);
  const at::Tensor scales =
      (amax / 127.5).clamp_min(static_cast<double>(std::numeric_limits<float>::epsilon()));
  const at::Tensor zero_points = at::zeros({w.size(0)}, at::kLong);
  return at::quantize_per_channel(w.contiguous(), scales, zero_points, /*axis=*/0, at::kQInt8);
}

// A convolution with its BatchNorm folded in, and optionally a fused ReLU.
struct ConvUnit {
  at::Tensor weight, bias;  // fp32, folded
  std::vector<int64_t> stride, padding, dilation;
  int64_t groups = 1;
  bool relu = false;
  RangeObserver out;
  ConvPacked packed;

  at::Tensor Float(const at::Tensor& x, bool observe) {
    at::Tensor y = at::conv2d(x, weight, bias, stride, padding, dilation, groups);
    if (relu) y.relu_();
    if (observe) out.Observe(y);
    return y;
  }
  at::Tensor Quantized(const at::Tensor& qx) const {
    const QuantizedOps& ops = Ops();
    return relu ? ops.conv2d_relu.call(qx, packed, out.scale, out.zero_point)
                : ops.conv2d.call(qx, packed, out.scale, out.zero_point);
  }
  void Pack(bool reduce_range) {
    out.ComputeQParams(reduce_range);
    packed = Ops().conv2d_prepack.call(QuantizeWeightPerChannel(weight), bias, torch::List<int64_t>(stride),
                                       torch::List<int64_t>(padding), torch::List<int64_t>(dilation), groups);
  }
};

// A BasicBlock (two convs) or Bottleneck (three), ending in add + ReLU.
struct Block {
  std::vector<ConvUnit> convs;  // the last one without ReLU
  std::optional<ConvUnit> downsample;
  RangeObserver out;

  at::Tensor Float(const at::Tensor& x, bool observe) {
    at::Tensor y = x;
    for (ConvUnit& c : convs) y = c.Float(y, observe);
    y += downsample ? downsample->Float(x, observe) : x;
    y.relu_();
    if (observe) out.Observe(y);
    return y;
  }
  at::Tensor Quantized(const at::Tensor& qx) const {
    at::Tensor y = qx;
    for (const ConvUnit& c : convs) y = c.Quantized(y);
    const at::Tensor identity = downsample ? downsample->Quantized(qx) : qx;
    return Ops().add_relu.call(y, identity, out.scale, out.zero_point);
  }
  void Pack(bool reduce_range) {
    for (ConvUnit& c : convs) c.Pack(reduce_range);
    if (downsample) downsample->Pack(reduce_range);
    out.ComputeQParams(reduce_range);
  }
};

// Reads the model's modules by torchvision name.
class ModelReader {
 public:
  explicit ModelReader(const ResNetImpl& model) : modules_(model.named_modules()) {}

  bool Has(const std::string& name) const { return modules_.contains(name); }

  absl::StatusOr<ConvUnit> FoldedConv(const std::string& conv_name, const std::string& bn_name,
                                      bool relu) const {
    const auto* conv = Find<torch::nn::Conv2dImpl>(conv_name);
    const auto* bn = Find<torch::nn::BatchNorm2dImpl>(bn_name);
    if (conv == nullptr || bn == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("model has no Conv2d '", conv_name, "' followed by BatchNorm2d '", bn_name, "'"));
    }
    const auto& o = conv->options;
    const auto* padding = std::get_if<torch::ExpandingArray<2>>(&o.padding());
    if (padding == nullptr || o.transposed() || !bn->running_mean.defined() || !bn->running_var.defined()) {
      return absl::FailedPreconditionError(
          absl::StrCat("unsupported convolution or BatchNorm layout at '", conv_name, "'"));
    }
    ConvUnit unit;
    torch::NoGradGuard no_grad;
    const at::Tensor w = conv->weight.detach().to(at::kCPU, at::kFloat);
    const at::Tensor inv_std = (bn->running_var.detach().to(at::kCPU, at::kFloat) + bn->options.eps()).rsqrt();
    at::Tensor gamma = bn->weight.defined() ? bn->weight.detach().to(at::kCPU, at::kFloat) : at::ones_like(inv_std);
    at::Tensor beta = bn->bias.defined() ? bn->bias.detach().to(at::kCPU, at::kFloat) : at::zeros_like(inv_std);
    at::Tensor conv_bias = conv->bias.defined() ? conv->bias.detach().to(at::kCPU, at::kFloat) : at::zeros_like(inv_std);
    const at::Tensor factor = gamma * inv_std;
    unit.weight = (w * factor.reshape({-1, 1, 1, 1})).contiguous();
    unit.bias = ((conv_bias - bn->running_mean.detach().to(at::kCPU, at::kFloat)) * factor + beta).contiguous();
    unit.stride = c10::IntArrayRef(o.stride()).vec();
    unit.padding = c10::IntArrayRef(*padding).vec();
    unit.dilation = c10::IntArrayRef(o.dilation()).vec();
    unit.groups = o.groups();
    unit.relu = relu;
    return unit;
  }

  const torch::nn::LinearImpl* Linear(const std::string& name) const {
    return Find<torch::nn::LinearImpl>(name);
  }

 private:
  // The module of that name and type, or null.
  template <typename ModuleType>
  const ModuleType* Find(const std::string& name) const {
    const std::shared_ptr<torch::nn::Module>* module = modules_.find(name);
    return module == nullptr ? nullptr : (*module)->as<ModuleType>();
  }

  torch::OrderedDict<std::string, std::shared_ptr<torch::nn::Module>> modules_;
};

}  // namespace

struct QuantizedResNet::Impl {
  int depth = 0;
  int64_t num_classes = 0;
  std::string engine_name;
  at::QEngine engine = at::QEngine::X86;
  bool reduce_range = true;

  RangeObserver input;
  ConvUnit stem;
  std::vector<Block> blocks;
  at::Tensor fc_weight, fc_bias;
  RangeObserver logits;
  LinearPacked fc_packed;

  // Calls fn on every activation's observer.
  template <typename Fn>
  void ForEachObserver(Fn fn) {
    fn(input);
    fn(stem.out);
    for (Block& b : blocks) {
      for (ConvUnit& c : b.convs) fn(c.out);
      if (b.downsample) fn(b.downsample->out);
      fn(b.out);
    }
    fn(logits);
  }

  // The BN-folded fp32 network; with observe, records activation ranges.
  at::Tensor Float(const at::Tensor& images, bool observe) {
    at::Tensor x = images.contiguous(at::MemoryFormat::ChannelsLast);
    if (observe) input.Observe(x);
    x = at::max_pool2d(stem.Float(x, observe), /*kernel_size=*/{3, 3}, /*stride=*/{2, 2}, /*padding=*/{1, 1}, /*dilation=*/{1, 1});
    for (Block& b : blocks) x = b.Float(x, observe);
    x = at::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    x = at::linear(x, fc_weight, fc_bias);
    if (observe) logits.Observe(x);
    return x;
  }

  at::Tensor Quantized(const at::Tensor& images) const {
    at::Tensor x = at::quantize_per_tensor(images.contiguous(at::MemoryFormat::ChannelsLast), input.scale,
                                           input.zero_point, at::kQUInt8);
    x = at::max_pool2d(stem.Quantized(x), /*kernel_size=*/{3, 3}, /*stride=*/{2, 2}, /*padding=*/{1, 1}, /*dilation=*/{1, 1});
    for (const Block& b : blocks) x = b.Quantized(x);
    x = at::adaptive_avg_pool2d(x, {1, 1}).reshape({x.size(0), x.size(1)});
    x = Ops().linear.call(x, fc_packed, logits.scale, logits.zero_point);
    return x.dequantize();
  }
};

QuantizedResNet::QuantizedResNet(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
QuantizedResNet::~QuantizedResNet() = default;

torch::Tensor QuantizedResNet::forward(const torch::Tensor& images) const {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3,
              "QuantizedResNet::forward expects float images [N, 3, H, W], got ", images.sizes());
  QEngineGuard engine(impl_->engine);
  return impl_->Quantized(images.to(at::kCPU, at::kFloat));
}

namespace {

// A float literal TorchScript reads back to the same double.
// A TorchScript float literal that keeps every bit of a finite `value`.
// %.17g prints a whole number without a point (a nearly diverged model's
// scale of 356541952), which TorchScript would read as an int.
std::string Literal(double value) {
  std::string text = absl::StrFormat("%.17g", value);
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

// "quantized.conv2d[_relu](input, self.name, scale, zero_point)".
std::string ConvCall(const ConvUnit& unit, const std::string& input, const std::string& name) {
  return absl::StrCat("quantized.", unit.relu ? "conv2d_relu" : "conv2d", "(", input, ", self.", name, ", ",
                      Literal(unit.out.scale), ", ", unit.out.zero_point, ")");
}

}  // namespace

absl::StatusOr<torch::jit::Module> QuantizedResNet::ToTorchScript() const {
  try {
    const Impl& m = *impl_;
    torch::jit::Module module("QuantizedResNet");
    module.register_attribute("training", c10::BoolType::get(), false);
    const c10::TypePtr conv_type = c10::getCustomClassType<ConvPacked>();
    const c10::TypePtr linear_type = c10::getCustomClassType<LinearPacked>();
    module.register_attribute("stem", conv_type, c10::IValue(m.stem.packed));
    std::string body = absl::StrCat(
        "def forward(self, images: Tensor) -> Tensor:\n",
        // C++'s define() does not resolve torch.channels_last or torch.quint8,
        // so they are given by their enum values.
        "    x = torch.quantize_per_tensor(images.contiguous(memory_format=",
        static_cast<int>(at::MemoryFormat::ChannelsLast), "), ", Literal(m.input.scale), ", ", m.input.zero_point,
        ", ", static_cast<int>(at::kQUInt8), ")\n",
        "    x = ", ConvCall(m.stem, "x", "stem"), "\n",
        "    x = torch.max_pool2d(x, [3, 3], [2, 2], [1, 1], [1, 1])\n");
    for (size_t b = 0; b < m.blocks.size(); ++b) {
      const Block& block = m.blocks[b];
      std::string y = "x";
      for (size_t c = 0; c < block.convs.size(); ++c) {
        const std::string name = absl::StrCat("block", b, "_conv", c);
        module.register_attribute(name, conv_type, c10::IValue(block.convs[c].packed));
        absl::StrAppend(&body, "    y = ", ConvCall(block.convs[c], y, name), "\n");
        y = "y";
      }
      std::string identity = "x";
      if (block.downsample) {
        const std::string name = absl::StrCat("block", b, "_downsample");
        module.register_attribute(name, conv_type, c10::IValue(block.downsample->packed));
        absl::StrAppend(&body, "    identity = ", ConvCall(*block.downsample, "x", name), "\n");
        identity = "identity";
      }
      absl::StrAppend(&body, "    x = quantized.add_relu(y, ", identity, ", ", Literal(block.out.scale), ", ",
                      block.out.zero_point, ")\n");
    }
    module.register_attribute("fc", linear_type, c10::IValue(m.fc_packed));
    absl::StrAppend(&body, "    x = torch.adaptive_avg_pool2d(x, [1, 1])\n",
                    "    x = x.reshape([x.size(0), x.size(1)])\n",
                    "    x = quantized.linear(x, self.fc, ", Literal(m.logits.scale), ", ",
                    m.logits.zero_point, ")\n",
                    "    return x.dequantize()\n");
    module.define(body, TorchAndQuantizedResolver());
    module.eval();
    return torch::jit::freeze(module);
  } catch (const std::exception& e) {
    // The first non-empty line of the error, without LibTorch's backtrace.
    std::string what = e.what();
    what = what.substr(what.find_first_not_of("\n "));
    return absl::InternalError(absl::StrCat("cannot build the int8 TorchScript module: ",
                                            absl::StrReplaceAll(what.substr(0, 400), {{"\n", " | "}})));
  }
}

int QuantizedResNet::depth() const { return impl_->depth; }
int64_t QuantizedResNet::num_classes() const { return impl_->num_classes; }
std::string QuantizedResNet::engine() const { return impl_->engine_name; }
at::QEngine QuantizedResNet::qengine() const { return impl_->engine; }

absl::Status CheckQuantizedEngine(const std::string& engine) {
  const EngineInfo* info = FindEngine(engine);
  if (info == nullptr) {
    std::vector<std::string> names;
    for (const EngineInfo& e : kEngines) names.push_back(e.name);
    return absl::InvalidArgumentError(
        absl::StrCat("unknown quantized engine '", engine, "' (choose one of ", absl::StrJoin(names, ", "), ")"));
  }
  const auto& supported = at::globalContext().supportedQEngines();
  if (std::find(supported.begin(), supported.end(), info->engine) == supported.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantized engine '", engine, "' is not supported by this LibTorch build"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<QuantizedResNet>> QuantizeResNet(
    const ResNet& model, const std::vector<torch::Tensor>& calibration_batches,
    const QuantizeOptions& options) {
  if (absl::Status s = CheckQuantizedEngine(options.engine); !s.ok()) return s;
  const EngineInfo* info = FindEngine(options.engine);
  if (calibration_batches.empty()) {
    return absl::InvalidArgumentError("QuantizeResNet needs at least one calibration batch");
  }
  for (size_t i = 0; i < calibration_batches.size(); ++i) {
    const torch::Tensor& b = calibration_batches[i];
    if (!b.defined() || b.dim() != 4 || b.size(1) != 3 || b.size(0) == 0 || !b.is_floating_point()) {
      return absl::InvalidArgumentError(absl::StrCat("calibration batch ", i,
                                                     " must be a non-empty float tensor [N, 3, H, W]"));
    }
  }
  if (model.is_empty()) return absl::InvalidArgumentError("QuantizeResNet got an empty ResNet holder");

  try {
    Ops();  // fails early if the kernels are missing
    auto impl = std::make_unique<QuantizedResNet::Impl>();
    impl->depth = model->depth();
    impl->num_classes = model->num_classes();
    impl->engine_name = info->name;
    impl->engine = info->engine;
    impl->reduce_range = info->reduce_range;

    // The network, BN folded, read by torchvision names.
    const ModelReader reader(*model);
    absl::StatusOr<ConvUnit> stem = reader.FoldedConv("conv1", "bn1", /*relu=*/true);
    if (!stem.ok()) return stem.status();
    impl->stem = *std::move(stem);
    const bool bottleneck = reader.Has("layer1.0.conv3");
    const int num_convs = bottleneck ? 3 : 2;
    for (int layer = 1; layer <= 4; ++layer) {
      for (int i = 0; reader.Has(absl::StrCat("layer", layer, ".", i)); ++i) {
        const std::string prefix = absl::StrCat("layer", layer, ".", i, ".");
        Block block;
        for (int c = 1; c <= num_convs; ++c) {
          absl::StatusOr<ConvUnit> conv = reader.FoldedConv(absl::StrCat(prefix, "conv", c),
                                                            absl::StrCat(prefix, "bn", c), c < num_convs);
          if (!conv.ok()) return conv.status();
          block.convs.push_back(*std::move(conv));
        }
        if (reader.Has(prefix + "downsample")) {
          absl::StatusOr<ConvUnit> down =
              reader.FoldedConv(prefix + "downsample.0", prefix + "downsample.1", /*relu=*/false);
          if (!down.ok()) return down.status();
          block.downsample = *std::move(down);
        }
        impl->blocks.push_back(std::move(block));
      }
    }
    const torch::nn::LinearImpl* fc = reader.Linear("fc");
    if (impl->blocks.empty() || fc == nullptr || !fc->bias.defined()) {
      return absl::FailedPreconditionError("model does not have torchvision's ResNet layout (layerN.i, fc)");
    }
    impl->fc_weight = fc->weight.detach().to(at::kCPU, at::kFloat).contiguous();
    impl->fc_bias = fc->bias.detach().to(at::kCPU, at::kFloat).contiguous();

    // Calibration on the folded fp32 network: min/max, then the histograms.
    {
      c10::InferenceMode inference;
      for (const torch::Tensor& batch : calibration_batches) {
        impl->Float(batch.to(at::kCPU, at::kFloat), /*observe=*/true);
      }
      bool finite = true;
      impl->ForEachObserver([&finite](RangeObserver& o) {
        finite = finite && !o.non_finite && std::isfinite(o.min) && std::isfinite(o.max);
      });
      if (!finite) {
        return absl::InvalidArgumentError(
            "the calibration batches make some activations infinite or NaN, which int8 cannot represent: "
            "has the model diverged?");
      }
      impl->ForEachObserver([](RangeObserver& o) { o.StartHistogram(); });
      for (const torch::Tensor& batch : calibration_batches) {
        impl->Float(batch.to(at::kCPU, at::kFloat), /*observe=*/true);
      }
    }

    // Quantize weights and prepack them for the engine.
    QEngineGuard engine(impl->engine);
    impl->input.ComputeQParams(impl->reduce_range);
    impl->stem.Pack(impl->reduce_range);
    for (Block& b : impl->blocks) b.Pack(impl->reduce_range);
    // reduce_range guards the inputs of the engine's int8 matmuls against
    // overflow; the logits feed none, so they keep the full 8 bits.
    impl->logits.ComputeQParams(/*reduce_range=*/false);
    impl->fc_packed = Ops().linear_prepack.call(QuantizeWeightPerChannel(impl->fc_weight), impl->fc_bias);
    return std::make_unique<QuantizedResNet>(std::move(impl));
  } catch (const c10::Error& e) {
    return absl::FailedPreconditionError(
        absl::StrCat("quantizing the ResNet for engine '", options.engine, "' failed: ", e.what_without_backtrace()));
  }
}

}  // namespace dlspeed
