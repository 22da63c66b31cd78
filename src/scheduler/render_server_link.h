// The schedule server's end of one render server's stream.
#pragma once

#include "rpc/protocol.h"

namespace ff {

class RenderServerLink {
 public:
  virtual ~RenderServerLink() = default;
  // Queues a message for the render server; never blocks. Messages are
  // delivered in the order of Send() calls.
  virtual void Send(const frameflow::v1::ScheduleServerMessage& msg) = 0;
  // Ends the stream (the render server is considered gone).
  virtual void Close() = 0;
};

}  // namespace ff
