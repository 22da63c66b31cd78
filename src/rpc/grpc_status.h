// Conversion between ff::Status and grpc::Status at the gRPC edge.
#pragma once

#include <grpcpp/grpcpp.h>

#include "base/status.h"

namespace ff {

grpc::Status ToGrpc(const Status& s);
// `what` names the call for context, e.g. "Submit".
Status FromGrpc(const grpc::Status& s, const std::string& what);

}  // namespace ff
