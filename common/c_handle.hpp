#pragma once
// One RAII alias per C handle, the deleter a template argument.
#include <memory>

namespace mcimd {

template <auto Free>
struct Deleter {
  template <class T>
  void operator()(T* p) const {
    if (p) Free(p);
  }
};

template <class T, auto Free>
using CHandle = std::unique_ptr<T, Deleter<Free>>;

}  // namespace mcimd
