// Errors crossing from native code to JS. Every check on input names the argument,
// the expectation and the actual value; the N-API layer maps Kind to the JS class.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace llmk {

enum class ErrorKind { Error, TypeError, RangeError };

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& msg) : std::runtime_error(msg), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

template <class... A>
std::string cat(const A&... a) {
  std::ostringstream os;
  (os << ... << a);
  return os.str();
}

template <class... A>
[[noreturn]] void fail(ErrorKind kind, const A&... a) {
  throw Error(kind, cat(a...));
}

// LLMK_CHECK(cond, kind, message parts...) — throws llmk::Error, never aborts.
#define LLMK_CHECK(cond, kind, ...) \
  do {                              \
    if (!(cond)) ::llmk::fail(::llmk::ErrorKind::kind, __VA_ARGS__); \
  } while (0)

}  // namespace llmk
