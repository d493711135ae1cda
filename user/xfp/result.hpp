// Control-plane result type: a value, or an errno with a message that says
// what was wrong and where. No exceptions cross the control plane; the data
// path (BPF, rings) never builds one of these.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace xfp {

struct Error {
  int code = EINVAL;    // positive errno
  std::string message;  // complete sentence for the user, no trailing newline

  // Prefix more context: "loading filters: " + message.
  Error&& context(const std::string& what) && {
    message = what + ": " + message;
    return std::move(*this);
  }
};

inline Error make_error(int code, std::string message) { return Error{code, std::move(message)}; }

// errno-based helper: "what: strerror(errno)".
inline Error errno_error(const std::string& what, int code = errno) {
  return Error{code, what + ": " + std::strerror(code)};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}    // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const& { return std::get<Error>(v_); }
  Error&& error() && { return std::get<Error>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

struct Ok {};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Ok) {}                                           // NOLINT(google-explicit-constructor)
  Result(Error error) : err_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const& { return err_; }
  Error&& error() && { return std::move(err_); }

 private:
  Error err_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace xfp

// Propagate an error from an expression returning Result<...>.
#define XFP_TRY(expr)                                  \
  do {                                                 \
    auto xfp_try_r_ = (expr);                          \
    if (!xfp_try_r_.ok()) return std::move(xfp_try_r_).error(); \
  } while (0)
