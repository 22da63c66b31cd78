// Every message of the frameflow protocol (namespace frameflow::v1), for
// code that handles several of its parts. Code that needs one part may
// include its generated header alone ("rpc/client_api.pb.h", ...).
#pragma once

#include "rpc/client_api.pb.h"
#include "rpc/common.pb.h"
#include "rpc/render_link.pb.h"
#include "rpc/site_link.pb.h"
