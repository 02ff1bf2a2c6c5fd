#include "common/serialize/torch_save_reader.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/exception_text.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "torch_save_reader assumes a little-endian host");

namespace dlspeed {
namespace {

using caffe2::serialize::PyTorchStreamReader;

// Limits on what a file may make us do, beyond those derived from its size.
constexpr size_t kMaxPickleBytes = size_t{64} << 20;  // data.pkl
constexpr size_t kMaxValues = size_t{8} << 20;        // objects built by the VM
constexpr size_t kMaxDims = 64;                       // dimensions of a tensor
// Bytes of tensor copies allowed, beyond the storage records themselves:
// kCopyFactor * file size + kCopySlack (see Unpickler::BuildTensor).
constexpr uint64_t kCopyFactor = 4;
constexpr uint64_t kCopySlack = uint64_t{16} << 20;

// 's' for messages, cut short if the file holds a long string.
std::string Quoted(const std::string& s) {
  constexpr size_t kMax = 80;
  if (s.size() <= kMax) return absl::StrCat("'", s, "'");
  return absl::StrCat("'", s.substr(0, kMax), "...'");
}

// ---------------------------------------------------------------------------
// Reading records, with the total bounded by the file's size (a stored zip
// record cannot be larger than the file that holds it; overlapping entries in
// a hostile central directory would otherwise multiply it).

class Records {
 public:
  Records(const std::string& path, PyTorchStreamReader& reader, uint64_t file_size)
      : path_(path), reader_(reader), file_size_(file_size), left_(file_size) {}

  uint64_t file_size() const { return file_size_; }

  // The record's bytes as a 1-D uint8 tensor (64-byte aligned).
  absl::StatusOr<at::Tensor> Read(const std::string& name, uint64_t max_bytes) {
    if (!reader_.hasRecord(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": the archive has no record ", Quoted(name)));
    }
    const uint64_t size = reader_.getRecordSize(name);
    if (size > left_) {
      return absl::InvalidArgumentError(absl::StrCat(
          path_, ": record ", Quoted(name), " claims ", size, " bytes, more than the file's ",
          file_size_, " bytes allow (compressed or overlapping records are not supported)"));
    }
    if (size > max_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(path_, ": record ", Quoted(name), " is ", size,
                                                     " bytes, more than the ", max_bytes,
                                                     " bytes this reader accepts"));
    }
    left_ -= size;
    at::Tensor bytes = at::empty({static_cast<int64_t>(size)}, at::kByte);
    if (size > 0) reader_.getRecord(name, bytes.data_ptr(), size);
    return bytes;
  }

 private:
  const std::string& path_;
  PyTorchStreamReader& reader_;
  const uint64_t file_size_;
  uint64_t left_;
};

// ---------------------------------------------------------------------------
// The pickle machine's objects. They live in an arena owned by the machine
// and refer to each other by raw pointer, so cycles and deep nesting cost
// nothing when they are freed.

struct Storage {
  std::string key;
  at::ScalarType dtype;  // the element type its persistent id names
  at::Tensor bytes;      // uint8, exactly numel * itemsize bytes of the record
  bool handed_out = false;  // whether one tensor already uses `bytes` itself
};

enum class Kind {
  kNone, kBool, kInt, kFloat, kString, kTuple, kList, kDict, kGlobal, kStorage, kTensor
};

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kNone: return "None";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "str";
    case Kind::kTuple: return "tuple";
    case Kind::kList: return "list";
    case Kind::kDict: return "dict";
    case Kind::kGlobal: return "global";
    case Kind::kStorage: return "storage";
    case Kind::kTensor: return "tensor";
  }
  return "?";
}

// "an int", "a dict", "None": for messages.
std::string Described(Kind kind) {
  if (kind == Kind::kNone) return "None";
  return absl::StrCat(kind == Kind::kInt ? "an " : "a ", KindName(kind));
}

struct Value {
  explicit Value(Kind k) : kind(k) {}
  Kind kind;
  int64_t i = 0;   // kBool, kInt
  double f = 0;    // kFloat
  std::string s;   // kString; kGlobal: "module.name"
  std::vector<Value*> items;                       // kTuple, kList
  std::vector<std::pair<Value*, Value*>> entries;  // kDict, in insertion order
  Storage* storage = nullptr;                      // kStorage
  at::Tensor tensor;                               // kTensor
};

// Storage globals (torch.<Type>Storage) and dtype globals (torch.<dtype>).
std::optional<at::ScalarType> StorageDtype(const std::string& global) {
  static const std::map<std::string, at::ScalarType>* const kTable =
      new std::map<std::string, at::ScalarType>{
          {"torch.DoubleStorage", at::kDouble},
          {"torch.FloatStorage", at::kFloat},
          {"torch.HalfStorage", at::kHalf},
          {"torch.BFloat16Storage", at::kBFloat16},
          {"torch.LongStorage", at::kLong},
          {"torch.IntStorage", at::kInt},
          {"torch.ShortStorage", at::kShort},
          {"torch.CharStorage", at::kChar},
          {"torch.ByteStorage", at::kByte},
          {"torch.BoolStorage", at::kBool},
          {"torch.ComplexFloatStorage", at::kComplexFloat},
          {"torch.ComplexDoubleStorage", at::kComplexDouble},
          {"torch.UntypedStorage", at::kByte},
          {"torch.storage.UntypedStorage", at::kByte},
      };
  auto it = kTable->find(global);
  if (it == kTable->end()) return std::nullopt;
  return it->second;
}

std::optional<at::ScalarType> DtypeGlobal(const std::string& global) {
  static const std::map<std::string, at::ScalarType>* const kTable =
      new std::map<std::string, at::ScalarType>{
          {"torch.float64", at::kDouble},       {"torch.double", at::kDouble},
          {"torch.float32", at::kFloat},        {"torch.float", at::kFloat},
          {"torch.float16", at::kHalf},         {"torch.half", at::kHalf},
          {"torch.bfloat16", at::kBFloat16},    {"torch.int64", at::kLong},
          {"torch.long", at::kLong},            {"torch.int32", at::kInt},
          {"torch.int", at::kInt},              {"torch.int16", at::kShort},
          {"torch.short", at::kShort},          {"torch.int8", at::kChar},
          {"torch.uint8", at::kByte},           {"torch.bool", at::kBool},
          {"torch.complex64", at::kComplexFloat},
          {"torch.cfloat", at::kComplexFloat},  {"torch.complex128", at::kComplexDouble},
          {"torch.cdouble", at::kComplexDouble}, {"torch.uint16", at::kUInt16},
          {"torch.uint32", at::kUInt32},        {"torch.uint64", at::kUInt64},
      };
  auto it = kTable->find(global);
  if (it == kTable->end()) return std::nullopt;
  return it->second;
}

bool IsKnownGlobal(const std::string& global) {
  return global == "collections.OrderedDict" || global == "torch._utils._rebuild_tensor_v2" ||
         global == "torch._utils._rebuild_tensor_v3" ||
         global == "torch._utils._rebuild_parameter" ||
         global == "torch._utils._rebuild_parameter_with_state" ||
         global == "torch.jit._pickle.restore_type_tag" || StorageDtype(global).has_value() ||
         DtypeGlobal(global).has_value();
}

// Pickle opcodes this machine understands.
const char* OpcodeName(uint8_t op) {
  switch (op) {
    case 0x80: return "PROTO";
    case 0x95: return "FRAME";
    case 'c': return "GLOBAL";
    case 0x93: return "STACK_GLOBAL";
    case 'q': return "BINPUT";
    case 'r': return "LONG_BINPUT";
    case 0x94: return "MEMOIZE";
    case 'h': return "BINGET";
    case 'j': return "LONG_BINGET";
    case '(': return "MARK";
    case '0': return "POP";
    case '1': return "POP_MARK";
    case '2': return "DUP";
    case ')': return "EMPTY_TUPLE";
    case 't': return "TUPLE";
    case 0x85: return "TUPLE1";
    case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";
    case '}': return "EMPTY_DICT";
    case ']': return "EMPTY_LIST";
    case 'a': return "APPEND";
    case 'e': return "APPENDS";
    case 's': return "SETITEM";
    case 'u': return "SETITEMS";
    case 'X': return "BINUNICODE";
    case 0x8c: return "SHORT_BINUNICODE";
    case 0x8d: return "BINUNICODE8";
    case 'J': return "BININT";
    case 'K': return "BININT1";
    case 'M': return "BININT2";
    case 0x8a: return "LONG1";
    case 0x8b: return "LONG4";
    case 'G': return "BINFLOAT";
    case 'N': return "NONE";
    case 0x88: return "NEWTRUE";
    case 0x89: return "NEWFALSE";
    case 'R': return "REDUCE";
    case 'b': return "BUILD";
    case 'Q': return "BINPERSID";
    case '.': return "STOP";
    default: return nullptr;
  }
}

// ---------------------------------------------------------------------------

class Unpickler {
 public:
  Unpickler(const std::string& path, Records& records)
      : path_(path),
        records_(records),
        copy_budget_(kCopyFactor * records.file_size() + kCopySlack) {}

  // Runs data.pkl and returns the object STOP leaves.
  absl::StatusOr<Value*> Run(const uint8_t* data, size_t size) {
    data_ = data;
    size_ = size;
    pos_ = 0;
    while (true) {
      if (pos_ >= size_) {
        op_pos_ = pos_;
        op_ = 0;
        return Error("ends without STOP (the file is truncated)");
      }
      op_pos_ = pos_;
      op_ = data_[pos_++];
      if (op_ == '.') {
        Value* result = nullptr;
        if (absl::Status s = Pop(&result); !s.ok()) return s;
        return result;
      }
      if (absl::Status s = Step(); !s.ok()) return s;
    }
  }

  absl::Status Error(const std::string& problem) const {
    const char* name = op_ == 0 ? nullptr : OpcodeName(op_);
    std::string where = absl::StrCat("data.pkl byte ", op_pos_);
    if (name != nullptr) absl::StrAppend(&where, " (", name, ")");
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", where, ": ", problem));
  }

 private:
  // --- objects -----------------------------------------------------------

  absl::StatusOr<Value*> New(Kind kind) {
    if (arena_.size() >= kMaxValues) {
      return Error(absl::StrCat("more than ", kMaxValues, " objects in data.pkl"));
    }
    arena_.push_back(std::make_unique<Value>(kind));
    return arena_.back().get();
  }

  Value* Shared(Kind kind, int64_t i, std::unique_ptr<Value>& slot) {
    if (!slot) {
      slot = std::make_unique<Value>(kind);
      slot->i = i;
    }
    return slot.get();
  }

  // --- stack ---------------------------------------------------------------

  size_t Floor() const { return marks_.empty() ? 0 : marks_.back(); }

  absl::Status Pop(Value** out) {
    if (stack_.size() <= Floor()) return Error("stack underflow");
    *out = stack_.back();
    stack_.pop_back();
    return absl::OkStatus();
  }

  absl::Status Top(Value** out) {
    if (stack_.size() <= Floor()) return Error("stack underflow");
    *out = stack_.back();
    return absl::OkStatus();
  }

  absl::Status PopMark(std::vector<Value*>* items) {
    if (marks_.empty()) return Error("no MARK on the stack");
    const size_t mark = marks_.back();
    marks_.pop_back();
    items->assign(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return absl::OkStatus();
  }

  // --- reading operands --------------------------------------------------

  absl::Status Need(size_t n) {
    if (size_ - pos_ < n) {
      return Error(absl::StrCat("needs ", n, " more bytes but data.pkl has ", size_ - pos_,
                                " (the file is truncated)"));
    }
    return absl::OkStatus();
  }

  uint64_t ReadLE(size_t n) {  // caller checked Need(n)
    uint64_t v = 0;
    for (size_t k = 0; k < n; ++k) v |= static_cast<uint64_t>(data_[pos_ + k]) << (8 * k);
    pos_ += n;
    return v;
  }

  absl::Status ReadLine(std::string* line) {
    const uint8_t* begin = data_ + pos_;
    const void* nl = std::memchr(begin, '\n', size_ - pos_);
    if (nl == nullptr) return Error("line without a newline (the file is truncated)");
    const size_t n = static_cast<const uint8_t*>(nl) - begin;
    line->assign(reinterpret_cast<const char*>(begin), n);
    pos_ += n + 1;
    return absl::OkStatus();
  }

  // --- opcodes -------------------------------------------------------------

  absl::Status PushString(size_t length_bytes) {
    if (absl::Status s = Need(length_bytes); !s.ok()) return s;
    const uint64_t n = ReadLE(length_bytes);
    if (n > size_ - pos_) {
      return Error(absl::StrCat("a string of ", n, " bytes but data.pkl has ", size_ - pos_,
                                " left (the file is truncated)"));
    }
    absl::StatusOr<Value*> v = New(Kind::kString);
    if (!v.ok()) return v.status();
    (*v)->s.assign(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    stack_.push_back(*v);
    return absl::OkStatus();
  }

  absl::Status PushInt(int64_t i) {
    absl::StatusOr<Value*> v = New(Kind::kInt);
    if (!v.ok()) return v.status();
    (*v)->i = i;
    stack_.push_back(*v);
    return absl::OkStatus();
  }

  absl::Status PushLong(size_t length_bytes) {
    if (absl::Status s = Need(length_bytes); !s.ok()) return s;
    const uint64_t n = ReadLE(length_bytes);
    if (n > 8) return Error(absl::StrCat("an integer of ", n, " bytes, wider than 64 bits"));
    if (absl::Status s = Need(n); !s.ok()) return s;
    uint64_t u = ReadLE(n);
    if (n > 0 && n < 8 && (u >> (8 * n - 1)) & 1) u |= ~uint64_t{0} << (8 * n);  // sign
    return PushInt(static_cast<int64_t>(u));
  }

  absl::Status PushGlobal(const std::string& module, const std::string& name) {
    std::string global = absl::StrCat(module, ".", name);
    if (!IsKnownGlobal(global)) {
      return Error(absl::StrCat("unsupported global ", Quoted(global),
                                " (this reader understands state_dicts of plain tensors)"));
    }
    absl::StatusOr<Value*> v = New(Kind::kGlobal);
    if (!v.ok()) return v.status();
    (*v)->s = std::move(global);
    stack_.push_back(*v);
    return absl::OkStatus();
  }

  absl::Status PushTuple(std::vector<Value*> items) {
    if (items.empty()) {
      stack_.push_back(Shared(Kind::kTuple, 0, empty_tuple_));
      return absl::OkStatus();
    }
    absl::StatusOr<Value*> v = New(Kind::kTuple);
    if (!v.ok()) return v.status();
    (*v)->items = std::move(items);
    stack_.push_back(*v);
    return absl::OkStatus();
  }

  absl::Status PopTupleN(size_t n) {
    if (stack_.size() < Floor() + n) return Error("stack underflow");
    std::vector<Value*> items(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
    stack_.resize(stack_.size() - n);
    return PushTuple(std::move(items));
  }

  absl::Status Memoize(uint64_t index) {
    Value* v = nullptr;
    if (absl::Status s = Top(&v); !s.ok()) return s;
    memo_[index] = v;
    return absl::OkStatus();
  }

  absl::Status Recall(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) return Error(absl::StrCat("memo index ", index, " is not defined"));
    stack_.push_back(it->second);
    return absl::OkStatus();
  }

  absl::Status SetItems(Value* dict, const std::vector<Value*>& items) {
    if (dict->kind != Kind::kDict) {
      return Error(absl::StrCat("sets items on ", Described(dict->kind), ", not a dict"));
    }
    if (items.size() % 2 != 0) return Error("an odd number of keys and values");
    for (size_t k = 0; k < items.size(); k += 2) dict->entries.emplace_back(items[k], items[k + 1]);
    return absl::OkStatus();
  }

  absl::Status Append(Value* list, const std::vector<Value*>& items) {
    if (list->kind != Kind::kList) {
      return Error(absl::StrCat("appends to ", Described(list->kind), ", not a list"));
    }
    list->items.insert(list->items.end(), items.begin(), items.end());
    return absl::OkStatus();
  }

  absl::Status Step() {
    switch (op_) {
      case 0x80: {  // PROTO
        if (absl::Status s = Need(1); !s.ok()) return s;
        const uint64_t protocol = ReadLE(1);
        if (protocol > 5) return Error(absl::StrCat("unsupported pickle protocol ", protocol));
        return absl::OkStatus();
      }
      case 0x95: {  // FRAME: a length we do not need
        if (absl::Status s = Need(8); !s.ok()) return s;
        ReadLE(8);
        return absl::OkStatus();
      }
      case 'c': {  // GLOBAL
        std::string module, name;
        if (absl::Status s = ReadLine(&module); !s.ok()) return s;
        if (absl::Status s = ReadLine(&name); !s.ok()) return s;
        return PushGlobal(module, name);
      }
      case 0x93: {  // STACK_GLOBAL
        Value *module = nullptr, *name = nullptr;
        if (absl::Status s = Pop(&name); !s.ok()) return s;
        if (absl::Status s = Pop(&module); !s.ok()) return s;
        if (module->kind != Kind::kString || name->kind != Kind::kString) {
          return Error("module and name are not strings");
        }
        return PushGlobal(module->s, name->s);
      }
      case 'q':  // BINPUT
        if (absl::Status s = Need(1); !s.ok()) return s;
        return Memoize(ReadLE(1));
      case 'r':  // LONG_BINPUT
        if (absl::Status s = Need(4); !s.ok()) return s;
        return Memoize(ReadLE(4));
      case 0x94:  // MEMOIZE
        return Memoize(memo_.size());
      case 'h':  // BINGET
        if (absl::Status s = Need(1); !s.ok()) return s;
        return Recall(ReadLE(1));
      case 'j':  // LONG_BINGET
        if (absl::Status s = Need(4); !s.ok()) return s;
        return Recall(ReadLE(4));
      case '(':  // MARK
        marks_.push_back(stack_.size());
        return absl::OkStatus();
      case '0': {  // POP
        Value* ignored = nullptr;
        return Pop(&ignored);
      }
      case '1': {  // POP_MARK
        std::vector<Value*> ignored;
        return PopMark(&ignored);
      }
      case '2': {  // DUP
        Value* v = nullptr;
        if (absl::Status s = Top(&v); !s.ok()) return s;
        stack_.push_back(v);
        return absl::OkStatus();
      }
      case ')':  // EMPTY_TUPLE
        return PushTuple({});
      case 't': {  // TUPLE
        std::vector<Value*> items;
        if (absl::Status s = PopMark(&items); !s.ok()) return s;
        return PushTuple(std::move(items));
      }
      case 0x85: return PopTupleN(1);
      case 0x86: return PopTupleN(2);
      case 0x87: return PopTupleN(3);
      case '}':
      case ']': {  // EMPTY_DICT, EMPTY_LIST
        absl::StatusOr<Value*> v = New(op_ == '}' ? Kind::kDict : Kind::kList);
        if (!v.ok()) return v.status();
        stack_.push_back(*v);
        return absl::OkStatus();
      }
      case 'a': {  // APPEND
        Value *item = nullptr, *list = nullptr;
        if (absl::Status s = Pop(&item); !s.ok()) return s;
        if (absl::Status s = Top(&list); !s.ok()) return s;
        return Append(list, {item});
      }
      case 'e': {  // APPENDS
        std::vector<Value*> items;
        if (absl::Status s = PopMark(&items); !s.ok()) return s;
        Value* list = nullptr;
        if (absl::Status s = Top(&list); !s.ok()) return s;
        return Append(list, items);
      }
      case 's': {  // SETITEM
        Value *key = nullptr, *value = nullptr, *dict = nullptr;
        if (absl::Status s = Pop(&value); !s.ok()) return s;
        if (absl::Status s = Pop(&key); !s.ok()) return s;
        if (absl::Status s = Top(&dict); !s.ok()) return s;
        return SetItems(dict, {key, value});
      }
      case 'u': {  // SETITEMS
        std::vector<Value*> items;
        if (absl::Status s = PopMark(&items); !s.ok()) return s;
        Value* dict = nullptr;
        if (absl::Status s = Top(&dict); !s.ok()) return s;
        return SetItems(dict, items);
      }
      case 'X': return PushString(4);     // BINUNICODE
      case 0x8c: return PushString(1);    // SHORT_BINUNICODE
      case 0x8d: return PushString(8);    // BINUNICODE8
      case 'J': {  // BININT
        if (absl::Status s = Need(4); !s.ok()) return s;
        return PushInt(static_cast<int32_t>(static_cast<uint32_t>(ReadLE(4))));
      }
      case 'K': {  // BININT1
        if (absl::Status s = Need(1); !s.ok()) return s;
        return PushInt(static_cast<int64_t>(ReadLE(1)));
      }
      case 'M': {  // BININT2
        if (absl::Status s = Need(2); !s.ok()) return s;
        return PushInt(static_cast<int64_t>(ReadLE(2)));
      }
      case 0x8a: return PushLong(1);  // LONG1
      case 0x8b: return PushLong(4);  // LONG4
      case 'G': {  // BINFLOAT: big-endian double
        if (absl::Status s = Need(8); !s.ok()) return s;
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | data_[pos_ + k];
        pos_ += 8;
        absl::StatusOr<Value*> v = New(Kind::kFloat);
        if (!v.ok()) return v.status();
        std::memcpy(&(*v)->f, &bits, sizeof(double));
        stack_.push_back(*v);
        return absl::OkStatus();
      }
      case 'N':
        stack_.push_back(Shared(Kind::kNone, 0, none_));
        return absl::OkStatus();
      case 0x88:
        stack_.push_back(Shared(Kind::kBool, 1, true_));
        return absl::OkStatus();
      case 0x89:
        stack_.push_back(Shared(Kind::kBool, 0, false_));
        return absl::OkStatus();
      case 'R': {  // REDUCE
        Value *args = nullptr, *callable = nullptr;
        if (absl::Status s = Pop(&args); !s.ok()) return s;
        if (absl::Status s = Pop(&callable); !s.ok()) return s;
        if (callable->kind != Kind::kGlobal) {
          return Error(absl::StrCat("calls ", Described(callable->kind), ", not a global"));
        }
        if (args->kind != Kind::kTuple) {
          return Error(absl::StrCat("the arguments of ", callable->s, " are ",
                                    Described(args->kind), ", not a tuple"));
        }
        absl::StatusOr<Value*> result = Call(callable->s, args->items);
        if (!result.ok()) return result.status();
        stack_.push_back(*result);
        return absl::OkStatus();
      }
      case 'b': {  // BUILD: only a state_dict's `_metadata`, which we ignore
        Value *state = nullptr, *object = nullptr;
        if (absl::Status s = Pop(&state); !s.ok()) return s;
        if (absl::Status s = Top(&object); !s.ok()) return s;
        if (object->kind != Kind::kDict) {
          return Error(absl::StrCat("sets the state of ", Described(object->kind),
                                    " (only a dict's attributes are understood)"));
        }
        return absl::OkStatus();
      }
      case 'Q': {  // BINPERSID
        Value* pid = nullptr;
        if (absl::Status s = Pop(&pid); !s.ok()) return s;
        absl::StatusOr<Value*> storage = LoadStorage(pid);
        if (!storage.ok()) return storage.status();
        stack_.push_back(*storage);
        return absl::OkStatus();
      }
      default:
        return Error(absl::StrCat("unknown or unsupported pickle opcode 0x",
                                  absl::Hex(static_cast<unsigned>(op_), absl::kZeroPad2)));
    }
  }

  // --- persistent ids: ('storage', storage_type, key, location, numel) -----

  absl::StatusOr<Value*> LoadStorage(Value* pid) {
    const std::vector<Value*>& t = pid->items;
    if (pid->kind != Kind::kTuple || t.size() != 5 || t[0]->kind != Kind::kString ||
        t[0]->s != "storage" || t[1]->kind != Kind::kGlobal || t[2]->kind != Kind::kString ||
        t[3]->kind != Kind::kString || t[4]->kind != Kind::kInt) {
      return Error(
          "a persistent id that is not ('storage', storage type, key, location, numel)");
    }
    const std::optional<at::ScalarType> dtype = StorageDtype(t[1]->s);
    if (!dtype) return Error(absl::StrCat(Quoted(t[1]->s), " is not a storage type"));
    const std::string& key = t[2]->s;
    const int64_t numel = t[4]->i;
    const uint64_t itemsize = c10::elementSize(*dtype);
    if (numel < 0 || static_cast<uint64_t>(numel) > records_.file_size() / itemsize) {
      return Error(absl::StrCat("storage ", Quoted(key), " claims ", numel, " elements of ",
                                itemsize,
                                " bytes, more than the file's ", records_.file_size(),
                                " bytes hold"));
    }
    const uint64_t nbytes = static_cast<uint64_t>(numel) * itemsize;

    Storage* storage;
    auto it = storages_.find(key);
    if (it != storages_.end()) {
      storage = it->second.get();
      if (storage->dtype != *dtype) {
        return Error(absl::StrCat("storage ", Quoted(key), " is used with two element types"));
      }
    } else {
      const std::string record = "data/" + key;
      absl::StatusOr<at::Tensor> bytes =
          records_.Read(record, std::numeric_limits<uint64_t>::max());
      if (!bytes.ok()) return bytes.status();
      if (static_cast<uint64_t>(bytes->numel()) < nbytes) {
        return Error(absl::StrCat("record ", Quoted(record), " holds ", bytes->numel(),
                                  " bytes but its storage needs ", nbytes, " (", numel,
                                  " elements of ", itemsize, " bytes)"));
      }
      auto owned = std::make_unique<Storage>();
      owned->key = key;
      owned->dtype = *dtype;
      owned->bytes = bytes->narrow(0, 0, static_cast<int64_t>(nbytes));
      storage = owned.get();
      storages_.emplace(key, std::move(owned));
    }
    if (static_cast<uint64_t>(storage->bytes.numel()) < nbytes) {
      return Error(absl::StrCat("storage ", Quoted(key), " is used with ", numel,
                                " elements but held fewer before"));
    }
    absl::StatusOr<Value*> v = New(Kind::kStorage);
    if (!v.ok()) return v.status();
    (*v)->storage = storage;
    return *v;
  }

  // --- calls ---------------------------------------------------------------

  absl::StatusOr<Value*> Call(const std::string& callable, const std::vector<Value*>& args) {
    if (callable == "collections.OrderedDict") {
      if (!args.empty()) return Error("OrderedDict built from arguments is not supported");
      return New(Kind::kDict);
    }
    if (callable == "torch._utils._rebuild_tensor_v2") {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (args.size() != 6 && args.size() != 7) {
        return Error(absl::StrCat("_rebuild_tensor_v2 with ", args.size(),
                                  " arguments instead of 6 or 7"));
      }
      if (args[0]->kind != Kind::kStorage) {
        return Error("_rebuild_tensor_v2 on something that is not a storage");
      }
      return BuildTensor(args[0]->storage, args[0]->storage->dtype, args[1], args[2], args[3]);
    }
    if (callable == "torch._utils._rebuild_tensor_v3") {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype[, metadata])
      if (args.size() != 7 && args.size() != 8) {
        return Error(absl::StrCat("_rebuild_tensor_v3 with ", args.size(),
                                  " arguments instead of 7 or 8"));
      }
      if (args[0]->kind != Kind::kStorage) {
        return Error("_rebuild_tensor_v3 on something that is not a storage");
      }
      const std::optional<at::ScalarType> dtype =
          args[6]->kind == Kind::kGlobal ? DtypeGlobal(args[6]->s) : std::nullopt;
      if (!dtype) return Error("_rebuild_tensor_v3 with a dtype this reader does not know");
      return BuildTensor(args[0]->storage, *dtype, args[1], args[2], args[3]);
    }
    if (callable == "torch._utils._rebuild_parameter" ||
        callable == "torch._utils._rebuild_parameter_with_state") {
      // (data, requires_grad, backward_hooks[, state]): the data is what we keep.
      const size_t expected = callable == "torch._utils._rebuild_parameter" ? 3 : 4;
      if (args.size() != expected || args[0]->kind != Kind::kTensor) {
        return Error(absl::StrCat(callable, " without a tensor and ", expected - 1,
                                  " more arguments"));
      }
      return args[0];
    }
    if (callable == "torch.jit._pickle.restore_type_tag") {
      if (args.size() != 2) return Error("restore_type_tag without 2 arguments");
      return args[0];
    }
    return Error(absl::StrCat(Quoted(callable), " cannot be called"));
  }

  absl::Status ReadInts(const char* what, Value* tuple, std::vector<int64_t>* out) {
    if (tuple->kind != Kind::kTuple) {
      return Error(absl::StrCat("a tensor's ", what, " is ", Described(tuple->kind),
                                ", not a tuple"));
    }
    if (tuple->items.size() > kMaxDims) {
      return Error(absl::StrCat("a tensor with ", tuple->items.size(), " dimensions (at most ",
                                kMaxDims, " are accepted)"));
    }
    out->clear();
    for (Value* v : tuple->items) {
      if (v->kind != Kind::kInt || v->i < 0) {
        return Error(absl::StrCat("a tensor's ", what, " holds something other than an int >= 0"));
      }
      out->push_back(v->i);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Value*> BuildTensor(Storage* storage, at::ScalarType dtype, Value* offset_value,
                                     Value* size_value, Value* stride_value) {
    std::vector<int64_t> sizes, strides;
    if (absl::Status s = ReadInts("size", size_value, &sizes); !s.ok()) return s;
    if (absl::Status s = ReadInts("stride", stride_value, &strides); !s.ok()) return s;
    if (sizes.size() != strides.size()) {
      return Error(absl::StrCat("a tensor with ", sizes.size(), " sizes but ", strides.size(),
                                " strides"));
    }
    if (offset_value->kind != Kind::kInt || offset_value->i < 0) {
      return Error("a tensor's storage offset is not an int >= 0");
    }
    const uint64_t offset = static_cast<uint64_t>(offset_value->i);
    const uint64_t itemsize = c10::elementSize(dtype);
    const uint64_t capacity = static_cast<uint64_t>(storage->bytes.numel()) / itemsize;

    // numel, and the last element the view touches; all values fit in 63 bits
    // or the tensor is rejected.
    constexpr uint64_t kLimit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    uint64_t numel = 1;
    for (int64_t size : sizes) {
      if (size != 0 && numel > kLimit / static_cast<uint64_t>(size)) {
        return Error("a tensor with more elements than int64 can count");
      }
      numel *= static_cast<uint64_t>(size);
    }
    if (numel > 0) {
      uint64_t last = offset;
      for (size_t d = 0; d < sizes.size(); ++d) {
        const uint64_t span = static_cast<uint64_t>(sizes[d] - 1);
        const uint64_t stride = static_cast<uint64_t>(strides[d]);
        if (stride != 0 && span > (kLimit - last) / stride) {
          return Error("a tensor whose strides reach past any storage");
        }
        last += span * stride;
      }
      if (last >= capacity) {
        return Error(absl::StrCat("a tensor of size (", absl::StrJoin(sizes, ", "), "), stride (",
                                  absl::StrJoin(strides, ", "), ") and offset ", offset,
                                  " needs storage element ", last, " but storage ",
                                  Quoted(storage->key), " holds ", capacity, " elements"));
      }
    } else if (offset > capacity) {
      return Error(absl::StrCat("an empty tensor at offset ", offset, " of storage ",
                                Quoted(storage->key), ", which holds ", capacity, " elements"));
    }

    at::Tensor typed = storage->bytes.narrow(0, 0, static_cast<int64_t>(capacity * itemsize))
                           .view(dtype);
    at::Tensor view = typed.as_strided(sizes, strides, static_cast<int64_t>(offset));
    if (dtype == at::kBool && numel > 0) {
      // Any other byte is a bool that is neither true nor false (which a copy
      // may or may not turn into 1): looked at as bytes, before any copy.
      const int largest = view.view(at::kByte).max().item<uint8_t>();
      if (largest > 1) {
        return Error(absl::StrCat("a bool tensor holds the byte ", largest, ", not 0 or 1"));
      }
    }
    at::Tensor result;
    if (!storage->handed_out && offset == 0 && numel == capacity && view.is_contiguous()) {
      // The tensor is its whole storage: use the record's memory as it is.
      storage->handed_out = true;
      result = view;
    } else {
      const uint64_t bytes = numel * itemsize;
      if (numel > kLimit / itemsize || bytes > copy_budget_) {
        return Error(absl::StrCat("tensor copies would take more than ",
                                  kCopyFactor, " times the file's size"));
      }
      copy_budget_ -= bytes;
      result = view.clone(at::MemoryFormat::Contiguous);
    }
    absl::StatusOr<Value*> v = New(Kind::kTensor);
    if (!v.ok()) return v.status();
    (*v)->tensor = std::move(result);
    return *v;
  }

  const std::string& path_;
  Records& records_;
  uint64_t copy_budget_;

  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  uint8_t op_ = 0;

  std::vector<std::unique_ptr<Value>> arena_;
  std::unique_ptr<Value> none_, true_, false_, empty_tuple_;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value*> memo_;
  std::unordered_map<std::string, std::unique_ptr<Storage>> storages_;
};

absl::StatusOr<std::vector<std::pair<std::string, at::Tensor>>> Read(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    std::string message = absl::StrCat(path, ": cannot open: ", std::strerror(err));
    if (err == ENOENT || err == ENOTDIR) return absl::NotFoundError(message);
    return absl::InvalidArgumentError(message);
  }
  if (S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": is a directory, not a torch.save file"));
  }
  if (st.st_size == 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": is empty, not a torch.save file"));
  }

  std::unique_ptr<PyTorchStreamReader> reader;
  try {
    reader = std::make_unique<PyTorchStreamReader>(path);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": not a readable torch.save zip archive (", ExceptionText(e), ")"));
  }
  Records records(path, *reader, static_cast<uint64_t>(st.st_size));

  if (reader->hasRecord("byteorder")) {
    absl::StatusOr<at::Tensor> order = records.Read("byteorder", 16);
    if (!order.ok()) return order.status();
    const std::string text(static_cast<const char*>(order->data_ptr()),
                           static_cast<size_t>(order->numel()));
    if (text != "little") {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": was saved with byte order '", text, "'; only 'little' is supported"));
    }
  }

  absl::StatusOr<at::Tensor> pickle = records.Read("data.pkl", kMaxPickleBytes);
  if (!pickle.ok()) return pickle.status();

  Unpickler unpickler(path, records);
  absl::StatusOr<Value*> top =
      unpickler.Run(static_cast<const uint8_t*>(pickle->data_ptr()), pickle->numel());
  if (!top.ok()) return top.status();
  if ((*top)->kind != Kind::kDict) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": holds ", Described((*top)->kind), ", not a dict of tensors (a state_dict)"));
  }

  // Keys in file order; a repeated key keeps its place and takes the new value.
  // The key bytes handled are bounded by data.pkl's size, which a file that
  // spells each key once never reaches.
  std::vector<std::pair<std::string, at::Tensor>> result;
  std::unordered_map<std::string_view, size_t> index;
  uint64_t key_bytes = 0;
  const std::vector<std::pair<Value*, Value*>>& entries = (*top)->entries;
  for (size_t k = 0; k < entries.size(); ++k) {
    const Value* key = entries[k].first;
    const Value* value = entries[k].second;
    if (key->kind != Kind::kString) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": key #", k, " of the dict is ",
                                                     Described(key->kind), ", not a str"));
    }
    if (value->kind != Kind::kTensor) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": the value of ", Quoted(key->s),
                                                     " is ", Described(value->kind),
                                                     ", not a tensor"));
    }
    key_bytes += key->s.size();
    if (key_bytes > static_cast<uint64_t>(pickle->numel())) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": the dict's keys add up to more bytes than data.pkl holds"));
    }
    auto [it, inserted] = index.emplace(std::string_view(key->s), result.size());
    if (inserted) {
      result.emplace_back(key->s, value->tensor);
    } else {
      result[it->second].second = value->tensor;
    }
  }
  return result;
}

}  // namespace

absl::StatusOr<std::vector<std::pair<std::string, at::Tensor>>> ReadTorchSaveStateDict(
    const std::string& path) {
  try {
    return Read(path);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(path, ": out of memory while reading"));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", ExceptionText(e)));
  }
}

std::optional<std::string> TextOfTensor(const at::Tensor& tensor) {
  if (tensor.dim() != 1 || tensor.scalar_type() != at::kByte) return std::nullopt;
  const at::Tensor bytes = tensor.contiguous();
  return std::string(bytes.data_ptr<uint8_t>(), bytes.data_ptr<uint8_t>() + bytes.numel());
}

}  // namespace dlspeed
