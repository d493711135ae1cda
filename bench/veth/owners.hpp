// Owners of the user-space generator's resources, one type per resource:
// a file descriptor, an anonymous mapping, a libxdp UMEM and a libxdp AF_XDP
// socket. Each releases what it holds on destruction; none is copyable.
// Destroy in reverse order of creation: the socket before its UMEM, the UMEM
// before the memory it registered.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include <xdp/xsk.h>

namespace xfpbench {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

// An anonymous, private, pre-faulted mapping of `size` bytes.
class Mapping {
 public:
  Mapping() = default;
  explicit Mapping(size_t size) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p != MAP_FAILED) {
      data_ = static_cast<uint8_t*>(p);
      size_ = size;
    }
  }
  ~Mapping() {
    if (data_) munmap(data_, size_);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  uint8_t* data() const { return data_; }  // nullptr when the mapping failed
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// A UMEM registered over memory someone else owns (a Mapping), with its fill
// and completion rings. The ring structs are value-initialised: libxdp reads
// their cached indices, and stale ones give completions that never happened.
class XskUmem {
 public:
  XskUmem() = default;
  ~XskUmem() {
    if (umem_) xsk_umem__delete(umem_);
  }
  XskUmem(const XskUmem&) = delete;
  XskUmem& operator=(const XskUmem&) = delete;
  // 0 or -errno.
  int create(uint8_t* area, size_t size, const xsk_umem_config& cfg) {
    fill_ = {};
    comp_ = {};
    return xsk_umem__create(&umem_, area, size, &fill_, &comp_, &cfg);
  }
  xsk_umem* get() const { return umem_; }
  xsk_ring_prod& fill() { return fill_; }
  xsk_ring_cons& comp() { return comp_; }

 private:
  xsk_umem* umem_ = nullptr;
  xsk_ring_prod fill_{};
  xsk_ring_cons comp_{};
};

// An AF_XDP socket (libxdp) and the rings it owns: here a transmit ring only.
class XskSocket {
 public:
  XskSocket() = default;
  ~XskSocket() {
    if (xsk_) xsk_socket__delete(xsk_);
  }
  XskSocket(const XskSocket&) = delete;
  XskSocket& operator=(const XskSocket&) = delete;
  // Transmit-only socket on `ifname` queue `queue`; 0 or -errno.
  int create_tx(const char* ifname, uint32_t queue, XskUmem& umem, const xsk_socket_config& cfg) {
    tx_ = {};
    return xsk_socket__create(&xsk_, ifname, queue, umem.get(), nullptr, &tx_, &cfg);
  }
  int fd() const { return xsk_ ? xsk_socket__fd(xsk_) : -1; }
  xsk_ring_prod& tx() { return tx_; }

 private:
  xsk_socket* xsk_ = nullptr;
  xsk_ring_prod tx_{};
};

}  // namespace xfpbench
