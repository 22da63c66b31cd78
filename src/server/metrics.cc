#include "server/metrics.h"

#include <cstdio>
#include <cstring>

namespace ff {

namespace {

std::string Number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

double FromBits(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

uint64_t ToBits(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof d);
  return bits;
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<int64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  uint64_t old = sum_bits_.load(std::memory_order_relaxed);
  while (
      !sum_bits_.compare_exchange_weak(old, ToBits(FromBits(old) + v), std::memory_order_relaxed)) {
  }
}

std::vector<int64_t> Histogram::Buckets() const {
  std::vector<int64_t> out(bounds_.size() + 1);
  for (size_t i = 0; i < out.size(); ++i) out[i] = buckets_[i].load(std::memory_order_relaxed);
  return out;
}

double Histogram::sum() const { return FromBits(sum_bits_.load(std::memory_order_relaxed)); }
int64_t Histogram::count() const { return count_.load(std::memory_order_relaxed); }

Counter* MetricsRegistry::AddCounter(const std::string& name, const std::string& help) {
  auto e = std::make_unique<Entry>();
  e->name = name;
  e->help = help;
  e->type = "counter";
  e->counter = std::make_unique<Counter>();
  Counter* c = e->counter.get();
  MutexLock lock(&mu_);
  entries_.push_back(std::move(e));
  return c;
}

Gauge* MetricsRegistry::AddGauge(const std::string& name, const std::string& help) {
  auto e = std::make_unique<Entry>();
  e->name = name;
  e->help = help;
  e->type = "gauge";
  e->gauge = std::make_unique<Gauge>();
  Gauge* g = e->gauge.get();
  MutexLock lock(&mu_);
  entries_.push_back(std::move(e));
  return g;
}

void MetricsRegistry::AddGaugeCallback(const std::string& name, const std::string& help,
                                       std::function<int64_t()> read) {
  auto e = std::make_unique<Entry>();
  e->name = name;
  e->help = help;
  e->type = "gauge";
  e->read = std::move(read);
  MutexLock lock(&mu_);
  entries_.push_back(std::move(e));
}

Histogram* MetricsRegistry::AddHistogram(const std::string& name, const std::string& help,
                                         std::vector<double> bounds) {
  auto e = std::make_unique<Entry>();
  e->name = name;
  e->help = help;
  e->type = "histogram";
  e->histogram = std::make_unique<Histogram>(std::move(bounds));
  Histogram* h = e->histogram.get();
  MutexLock lock(&mu_);
  entries_.push_back(std::move(e));
  return h;
}

std::string MetricsRegistry::Exposition() const {
  std::string out;
  MutexLock lock(&mu_);
  for (const auto& e : entries_) {
    out += "# HELP " + e->name + " " + e->help + "\n";
    out += "# TYPE " + e->name + " " + e->type + "\n";
    if (e->counter) {
      out += e->name + " " + std::to_string(e->counter->value()) + "\n";
    } else if (e->gauge) {
      out += e->name + " " + std::to_string(e->gauge->value()) + "\n";
    } else if (e->read) {
      out += e->name + " " + std::to_string(e->read()) + "\n";
    } else if (e->histogram) {
      const auto& bounds = e->histogram->bounds();
      const std::vector<int64_t> buckets = e->histogram->Buckets();
      int64_t cumulative = 0;
      for (size_t i = 0; i < buckets.size(); ++i) {
        cumulative += buckets[i];
        const std::string le = i < bounds.size() ? Number(bounds[i]) : "+Inf";
        out += e->name + "_bucket{le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
      }
      out += e->name + "_sum " + Number(e->histogram->sum()) + "\n";
      out += e->name + "_count " + std::to_string(cumulative) + "\n";
    }
  }
  return out;
}

}  // namespace ff
