#include "scheduler/register_check.h"

#include <algorithm>
#include <set>
#include <string>

#include "base/text.h"

namespace ff {

namespace {

bool HasControlChar(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

}  // namespace

Status CheckRegister(const frameflow::v1::Register& reg) {
  if (reg.render_server().empty()) {
    return InvalidArgument("register: render_server: must name the render server");
  }
  // Validate everything before touching state: a bad registration is refused,
  // never allowed to reach the database (where it would stop the server).
  if (const char* problem = ServerNameProblem(reg.render_server())) {
    return InvalidArgument("register: render_server: name '" +
                           PrintableExcerpt(reg.render_server()) + "' " + problem);
  }
  if (reg.slots_size() == 0) {
    return InvalidArgument("register: slots: render server '" + reg.render_server() +
                           "' offers no render slots");
  }
  if (reg.instance().size() > 200) {
    return InvalidArgument("register: instance: longer than 200 characters");
  }
  if (reg.host().empty()) {
    return InvalidArgument("register: host: render server '" + reg.render_server() +
                           "' did not name its host");
  }
  if (reg.host().size() > 255) {
    return InvalidArgument("register: host: '" + PrintableExcerpt(reg.host()) +
                           "' is longer than 255 characters");
  }
  // Names go to logs, to `hosts`, and into newline-separated lists in the
  // database (chunks.failed_hosts, hosts.gpus): no control characters.
  if (HasControlChar(reg.render_server()) || HasControlChar(reg.host())) {
    return InvalidArgument(
        "register: render_server and host must not contain control "
        "characters");
  }
  for (int i = 0; i < reg.hardware().gpus_size(); ++i) {
    if (HasControlChar(reg.hardware().gpus(i))) {
      return InvalidArgument("register: hardware.gpus[" + std::to_string(i) +
                             "]: must not contain control characters");
    }
  }
  {
    std::set<std::string> names;
    for (int i = 0; i < reg.slots_size(); ++i) {
      const std::string& n = reg.slots(i).name();
      if (const char* problem = ServerNameProblem(n)) {
        return InvalidArgument("register: slots[" + std::to_string(i) + "].name: '" +
                               PrintableExcerpt(n) + "' " + problem);
      }
      if (!names.insert(n).second) {
        return InvalidArgument("register: slots[" + std::to_string(i) + "].name: '" + n +
                               "' is used twice");
      }
    }
    names.clear();
    for (int i = 0; i < reg.packages_size(); ++i) {
      const std::string& n = reg.packages(i).name();
      if (n.empty() || !names.insert(n).second) {
        return InvalidArgument("register: packages[" + std::to_string(i) + "].name: '" +
                               PrintableExcerpt(n) + "' is empty or used twice");
      }
    }
  }
  return Status::Ok();
}

}  // namespace ff
