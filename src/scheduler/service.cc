#include "scheduler/service.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "rpc/blob_client.h"
#include "rpc/grpc_status.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace ff {

namespace pb = frameflow::v1;

grpc::Status ScheduleService::Submit(grpc::ServerContext*, const pb::SubmitRequest* req,
                                     pb::SubmitResponse* resp) {
  auto id = scheduler_->Submit(*req);
  if (!id.ok()) return ToGrpc(id.status());
  resp->set_job_id(*id);
  for (auto& w : scheduler_->SubmitWarnings(*id)) resp->add_warnings(std::move(w));
  return grpc::Status::OK;
}

grpc::Status ScheduleService::ValidateJob(grpc::ServerContext*, const pb::ValidateJobRequest* req,
                                          pb::ValidateJobResponse* resp) {
  auto profile = ValidateJobDescription(req->description(), req->description_name());
  if (!profile.ok()) return ToGrpc(profile.status());
  resp->set_name(profile->name);
  resp->set_profile(ProfileToToml(*profile));
  for (const std::string& f : profile->AllFiles()) resp->add_files(f);
  resp->set_frames_total(static_cast<int64_t>(profile->frames.size()));
  return grpc::Status::OK;
}

grpc::Status ScheduleService::GetJob(grpc::ServerContext*, const pb::JobRef* req,
                                     pb::JobInfo* resp) {
  auto info = scheduler_->GetJob(req->job_id(), true);
  if (!info.ok()) return ToGrpc(info.status());
  *resp = std::move(info).value();
  return grpc::Status::OK;
}

grpc::Status ScheduleService::ListJobs(grpc::ServerContext*, const pb::ListJobsRequest* req,
                                       pb::ListJobsResponse* resp) {
  for (auto& j : scheduler_->ListJobs(req->include_finished())) *resp->add_jobs() = std::move(j);
  return grpc::Status::OK;
}

grpc::Status ScheduleService::WatchJob(grpc::ServerContext* ctx, const pb::JobRef* req,
                                       grpc::ServerWriter<pb::JobEvent>* writer) {
  // Events are coalesced: at most one every kMinEventGapMs while the job
  // runs (a progress bar needs no more; a busy site changes state thousands
  // of times a second), and the final state at once.
  constexpr auto kMinEventGap = std::chrono::milliseconds(100);
  uint64_t seen = 0;
  std::string last;
  auto last_write = std::chrono::steady_clock::now() - kMinEventGap;
  while (!ctx->IsCancelled() && !shutting_down_) {
    auto info = scheduler_->GetJob(req->job_id(), false);
    if (!info.ok()) return ToGrpc(info.status());
    const bool final =
        info->state() == "done" || info->state() == "failed" || info->state() == "cancelled";
    auto now = std::chrono::steady_clock::now();
    if (!final && now - last_write < kMinEventGap) {
      std::this_thread::sleep_for(kMinEventGap - (now - last_write));
      continue;
    }
    std::string encoded = info->SerializeAsString();
    if (encoded != last) {
      pb::JobEvent ev;
      *ev.mutable_job() = *info;
      if (!writer->Write(ev)) return grpc::Status::OK;
      last = std::move(encoded);
      last_write = std::chrono::steady_clock::now();
    }
    if (final) return grpc::Status::OK;
    seen = scheduler_->WaitForChange(seen, 500);
  }
  return grpc::Status::OK;
}

grpc::Status ScheduleService::CancelJob(grpc::ServerContext*, const pb::JobRef* req,
                                        pb::JobInfo* resp) {
  auto info = scheduler_->Cancel(req->job_id());
  if (!info.ok()) return ToGrpc(info.status());
  *resp = std::move(info).value();
  return grpc::Status::OK;
}

grpc::Status ScheduleService::GetLogs(grpc::ServerContext*, const pb::LogsRequest* req,
                                      pb::LogsResponse* resp) {
  auto logs = scheduler_->GetLogs(req->job_id(), req->frame());
  if (!logs.ok()) return ToGrpc(logs.status());
  *resp = std::move(logs).value();
  return grpc::Status::OK;
}

grpc::Status ScheduleService::ListOutputs(grpc::ServerContext*, const pb::JobRef* req,
                                          pb::OutputsResponse* resp) {
  auto outs = scheduler_->ListOutputs(req->job_id());
  if (!outs.ok()) return ToGrpc(outs.status());
  *resp = std::move(outs).value();
  return grpc::Status::OK;
}

grpc::Status ScheduleService::ListHosts(grpc::ServerContext*, const pb::ListHostsRequest*,
                                        pb::ListHostsResponse* resp) {
  *resp = scheduler_->ListHosts();
  return grpc::Status::OK;
}

grpc::Status ScheduleService::HaveBlobs(grpc::ServerContext*, const pb::HaveBlobsRequest* req,
                                        pb::HaveBlobsResponse* resp) {
  for (const auto& s : req->sha256()) {
    if (!scheduler_->blobs()->Has(s)) resp->add_missing(s);
  }
  return grpc::Status::OK;
}

grpc::Status ScheduleService::UploadBlob(grpc::ServerContext*,
                                         grpc::ServerReader<pb::BlobChunk>* reader,
                                         pb::BlobRef* resp) {
  pb::BlobChunk chunk;
  if (!reader->Read(&chunk)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "upload: empty stream");
  }
  const std::string sha = chunk.sha256();
  const int64_t size = chunk.size();
  if (size > scheduler_->config().max_upload_bytes) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "upload: size " + std::to_string(size) +
                            " exceeds the site's max_upload of " +
                            std::to_string(scheduler_->config().max_upload_bytes) + " bytes");
  }
  // A full disk is named as such: the uploader retries it later (code
  // RESOURCE_EXHAUSTED), it is not the file's fault.
  auto failed = [&](const Status& st) {
    return ToGrpc(st.WithContext(IsDiskFull(st) ? "site storage full (" +
                                                      scheduler_->config().storage_dir() + ")"
                                                : std::string("upload")));
  };
  auto writer = scheduler_->blobs()->BeginWrite(sha, size);
  if (!writer.ok()) return failed(writer.status());
  do {
    Status st = (*writer)->Append(chunk.data());
    if (!st.ok()) return failed(st);
  } while (reader->Read(&chunk));
  Status st = (*writer)->Commit();
  if (!st.ok()) return failed(st);
  resp->set_sha256(sha);
  resp->set_size(size);
  return grpc::Status::OK;
}

grpc::Status ScheduleService::DownloadBlob(grpc::ServerContext* ctx,
                                           const pb::DownloadBlobRequest* req,
                                           grpc::ServerWriter<pb::BlobChunk>* writer) {
  if (!IsSha256Hex(req->sha256())) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "sha256: '" + req->sha256() + "' is not a SHA-256 digest");
  }
  if (!scheduler_->blobs()->Has(req->sha256())) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "blob " + req->sha256() + " not found");
  }
  std::string path = scheduler_->blobs()->PathOf(req->sha256());
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ToGrpc(ErrnoError("cannot open", path, errno));
  if (req->offset() > 0) ::lseek(fd, req->offset(), SEEK_SET);
  std::string buf(kBlobChunkBytes, '\0');
  while (!ctx->IsCancelled()) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pb::BlobChunk chunk;
    chunk.set_data(buf.data(), static_cast<size_t>(n));
    if (!writer->Write(chunk)) break;
  }
  ::close(fd);
  return grpc::Status::OK;
}

grpc::Status ScheduleService::ListPeers(grpc::ServerContext*, const pb::ListPeersRequest*,
                                        pb::ListPeersResponse* resp) {
  resp->set_site(scheduler_->config().site_name);
  if (exchange_) {
    for (auto& p : exchange_->Peers()) *resp->add_peers() = std::move(p);
  }
  return grpc::Status::OK;
}

}  // namespace ff
