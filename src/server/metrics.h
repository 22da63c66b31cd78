// MetricsRegistry: counters, gauges and histograms of a daemon, exposed in
// the Prometheus text exposition format (version 0.0.4) at /metrics of the
// daemon's HTTP listener (http_listener.h).
//
// Metrics are registered once, at start, and live as long as the registry;
// updating one is a relaxed atomic operation (no lock), so they may sit on
// the dispatch path. Gauges may instead be read from a callback at scrape
// time; the callback must be thread-safe and must not block for long.
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/mutex.h"

namespace ff {

class Counter {
 public:
  void Increment(int64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

class Gauge {
 public:
  void Set(int64_t v) { v_.store(v, std::memory_order_relaxed); }
  void Add(int64_t n) { v_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

// Observations counted into fixed upper bounds (cumulative in the output).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // Per-bucket counts (not cumulative), the last one for +Inf; sum; count.
  std::vector<int64_t> Buckets() const;
  double sum() const;
  int64_t count() const;

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<int64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<int64_t> count_{0};
  std::atomic<uint64_t> sum_bits_{0};  // a double, updated by compare-exchange
};

class MetricsRegistry {
 public:
  // `name` must match [a-zA-Z_:][a-zA-Z0-9_:]*; `help` is one line.
  Counter* AddCounter(const std::string& name, const std::string& help);
  Gauge* AddGauge(const std::string& name, const std::string& help);
  void AddGaugeCallback(const std::string& name, const std::string& help,
                        std::function<int64_t()> read);
  Histogram* AddHistogram(const std::string& name, const std::string& help,
                          std::vector<double> bounds);

  // Every metric in registration order, in the text exposition format.
  std::string Exposition() const;

 private:
  struct Entry {
    std::string name, help, type;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::function<int64_t()> read;
    std::unique_ptr<Histogram> histogram;
  };
  mutable Mutex mu_;
  std::vector<std::unique_ptr<Entry>> entries_ FF_GUARDED_BY(mu_);
};

}  // namespace ff
