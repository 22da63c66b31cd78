// Every service of the frameflow protocol with its stubs:
// ScheduleServer (client API, file service), RenderServerLink (the render
// server stream), SiteLink (between sites).
#pragma once

#include "rpc/client_api.grpc.pb.h"
#include "rpc/protocol.h"
#include "rpc/render_link.grpc.pb.h"
#include "rpc/site_link.grpc.pb.h"
