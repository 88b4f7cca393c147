#include "gpu/launcher.h"
#include "common/mutex.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>

extern char** environ;

namespace spillway::gpu {

namespace {

int64_t wallMs(Launcher::Clock::time_point t) {
  const auto delta = t - Launcher::Clock::now();
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch() +
                                                               delta)
      .count();
}

// GET `path` on 127.0.0.1:`port`: whether the answer's status is 200.
// Bounded: each step waits at most `timeout`.
bool probe(uint16_t port, const std::string& path, int timeout_ms) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = false;
  auto wait = [&](short events) {
    pollfd p{fd, events, 0};
    return poll(&p, 1, timeout_ms) == 1 && (p.revents & events) != 0;
  };
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 || errno == EINPROGRESS) {
    int err = 0;
    socklen_t len = sizeof err;
    if (wait(POLLOUT) && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
      const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
      if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()) && wait(POLLIN)) {
        char buf[64] = {};
        const ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        ok = n >= 12 && std::strncmp(buf, "HTTP/1.", 7) == 0 && std::strncmp(buf + 9, "200", 3) == 0;
      }
    }
  }
  close(fd);
  return ok;
}

}  // namespace

Launcher::Launcher() : thread_([this] { run(); }) {}

Launcher::~Launcher() {
  std::vector<pid_t> pids;
  {
    common::MutexLock lock(mu_);
    stop_ = true;
    for (auto& [name, w] : workers_) {
      if (w.pid > 0) pids.push_back(w.pid);
      w.pid = 0;
    }
  }
  cv_.notify_all();
  thread_.join();
  stopProcesses(pids);
}

void Launcher::setStopGrace(std::chrono::milliseconds grace) {
  common::MutexLock lock(mu_);
  grace_ = grace;
}

uint16_t Launcher::freePort() {
  // Below the kernel's ephemeral range (ip_local_port_range, 32768 by
  // default): outgoing connections take their local ports from that range,
  // and under load one would take a port checked free here before the
  // worker binds it. Ports handed out before are not offered again.
  static common::Mutex mu;
  static std::set<uint16_t> given;
  int low = 32768;
  if (FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
    if (std::fscanf(f, "%d", &low) != 1) low = 32768;
    std::fclose(f);
  }
  const int top = std::clamp(low, 2048, 65535), bottom = std::max(1024, top / 2);
  common::MutexLock lock(mu);
  std::random_device rd;
  const int span = top - bottom;
  const int first = static_cast<int>(rd() % static_cast<unsigned>(span));
  for (int k = 0; k < span; ++k) {
    const auto port = static_cast<uint16_t>(bottom + (first + k) % span);
    if (given.count(port)) continue;
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    const bool free = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    if (free) {
      given.insert(port);
      return port;
    }
  }
  return 0;
}

void Launcher::spawn(Worker& w) {
  // Everything the child needs is built before fork: after it, only
  // async-signal-safe calls.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    bool overridden = false;
    for (const auto& add : w.spec.env) {
      const size_t eq = add.find('=');
      if (eq != std::string::npos && std::strncmp(*e, add.c_str(), eq + 1) == 0) overridden = true;
    }
    if (!overridden) env_strings.emplace_back(*e);
  }
  for (const auto& add : w.spec.env) env_strings.push_back(add);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  // A simple command replaces the shell (exec), so signals and the
  // engine's death (PR_SET_PDEATHSIG) reach the server itself; a compound
  // one runs under the shell, and its process group is killed as a whole.
  const bool simple = w.spec.command.find_first_of(";&|()\n`") == std::string::npos;
  std::string sh = "/bin/sh", dash_c = "-c", cmd = simple ? "exec " + w.spec.command : w.spec.command;
  char* argv[] = {sh.data(), dash_c.data(), cmd.data(), nullptr};
  const std::string log = w.spec.log_path.empty() ? "/dev/null" : w.spec.log_path;
  const pid_t parent = getpid();

  // Every signal stays blocked across fork, so no handler of this process
  // (a test framework's, a GUI's) can run in the child before exec; the
  // child puts the usual dispositions back and unblocks.
  sigset_t all, before;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &before);
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);  // the engine died before prctl
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);  // fails harmlessly for KILL/STOP
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);  // the engine blocks its stop signals; the worker must not
    const int in = open("/dev/null", O_RDONLY);
    const int out = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (in >= 0) dup2(in, 0);
    if (out >= 0) {
      dup2(out, 1);
      dup2(out, 2);
    }
    execve("/bin/sh", argv, envp.data());
    _exit(127);
  }
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
  w.started = Clock::now();
  w.last_probe = {};
  if (pid < 0) {
    w.pid = 0;
    w.state = "exited";
    w.last_error = std::string("fork failed: ") + std::strerror(errno);
    w.next_restart = Clock::now() + w.backoff;
    return;
  }
  setpgid(pid, pid);  // also here: no race with the first kill
  w.pid = pid;
  w.state = "starting";
}

void Launcher::reap(Worker& w, int status) {
  // Whatever the shell left in the worker's process group goes with it
  // (a server it forked would hold the port the restart needs).
  kill(-w.pid, SIGKILL);
  w.pid = 0;
  if (w.state != "unhealthy") {
    w.last_error = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                   : WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                         : "ended";
    w.state = "exited";
  }
  w.next_restart = Clock::now() + w.backoff;
  w.backoff = std::min(w.backoff * 2, w.spec.max_backoff);
}

void Launcher::stopProcesses(const std::vector<pid_t>& pids) {
  if (pids.empty()) return;
  std::chrono::milliseconds grace;
  {
    common::MutexLock lock(mu_);
    grace = grace_;
  }
  // All of them at once: SIGTERM to every group, then one shared grace.
  // A pidfd becomes readable when its process exits, so the wait needs no
  // polling (waitpid has no timeout).
  std::vector<int> fds;
  for (pid_t pid : pids) {
    fds.push_back(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
    kill(-pid, SIGTERM);
  }
  const auto until = Clock::now() + grace;
  for (int fd : fds) {
    if (fd < 0) continue;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (left > 0) poll(&p, 1, static_cast<int>(left));
    close(fd);
  }
  for (pid_t pid : pids) {
    kill(-pid, SIGKILL);  // still there after the grace, or anything the shell left behind
    int status = 0;
    waitpid(pid, &status, 0);
  }
}

std::vector<std::string> Launcher::setWorkers(std::vector<WorkerSpec> specs, bool keep_missing) {
  std::vector<pid_t> stopping;
  std::vector<std::string> kept;
  {
    common::MutexLock lock(mu_);
    std::map<std::string, WorkerSpec> wanted;
    for (auto& s : specs) wanted[s.name] = std::move(s);
    for (auto it = workers_.begin(); it != workers_.end();) {
      auto w = wanted.find(it->first);
      if (w != wanted.end() && w->second == it->second.spec) {
        wanted.erase(w);
        ++it;
        continue;
      }
      if (w == wanted.end() && keep_missing) {
        kept.push_back(it->first);
        ++it;
        continue;
      }
      if (it->second.pid > 0) stopping.push_back(it->second.pid);
      it = workers_.erase(it);
    }
    for (auto& [name, spec] : wanted) {
      Worker w;
      w.spec = std::move(spec);
      w.backoff = w.spec.backoff;
      auto [it, fresh] = workers_.emplace(name, std::move(w));
      spawn(it->second);
    }
  }
  cv_.notify_all();
  stopProcesses(stopping);
  return kept;
}

void Launcher::retire(const std::vector<std::string>& names) {
  std::vector<pid_t> stopping;
  {
    common::MutexLock lock(mu_);
    for (const auto& name : names) {
      auto it = workers_.find(name);
      if (it == workers_.end()) continue;
      if (it->second.pid > 0) stopping.push_back(it->second.pid);
      workers_.erase(it);
    }
  }
  stopProcesses(stopping);
}

std::vector<WorkerState> Launcher::states() const {
  common::MutexLock lock(mu_);
  std::vector<WorkerState> out;
  for (const auto& [name, w] : workers_) {
    WorkerState s{name, w.spec.instance, w.state, w.pid, w.spec.port, w.restarts, w.last_error, 0};
    if (w.pid == 0 && (w.state == "exited" || w.state == "unhealthy")) s.next_restart_ms = wallMs(w.next_restart);
    out.push_back(std::move(s));
  }
  return out;
}

void Launcher::run() {
  constexpr auto kTick = std::chrono::milliseconds(50);
  constexpr auto kProbeEvery = std::chrono::milliseconds(200);
  constexpr auto kHealthyResets = std::chrono::seconds(60);
  common::MutexLock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, kTick, [this] {
      mu_.assertHeld();
      return stop_;
    });
    if (stop_) break;
    const auto now = Clock::now();
    struct Probe {
      std::string name;
      pid_t pid;
      uint16_t port;
      std::string path;
    };
    std::vector<Probe> probes;
    std::vector<pid_t> kills;
    for (auto& [name, w] : workers_) {
      if (w.pid > 0) {
        int status = 0;
        if (waitpid(w.pid, &status, WNOHANG) == w.pid) {
          reap(w, status);
          continue;
        }
        if (w.state == "starting") {
          if (now - w.started > w.spec.start_timeout) {
            w.state = "unhealthy";
            w.last_error = "no 200 from " + w.spec.health_path + " within " +
                           std::to_string(w.spec.start_timeout.count()) + " ms";
            kills.push_back(w.pid);
          } else if (now - w.last_probe >= kProbeEvery) {
            w.last_probe = now;
            probes.push_back({name, w.pid, w.spec.port, w.spec.health_path});
          }
        } else if (w.state == "healthy" && now - w.healthy_since > kHealthyResets) {
          w.backoff = w.spec.backoff;
        }
      } else if ((w.state == "exited" || w.state == "unhealthy") && now >= w.next_restart) {
        ++w.restarts;
        spawn(w);
      }
    }
    if (probes.empty() && kills.empty()) continue;
    lock.unlock();
    for (pid_t p : kills) kill(-p, SIGKILL);  // reaped on the next tick
    std::vector<std::pair<std::string, pid_t>> healthy;
    for (const auto& p : probes) {
      if (probe(p.port, p.path, 200)) healthy.push_back({p.name, p.pid});
    }
    lock.lock();
    for (const auto& [name, pid] : healthy) {
      auto it = workers_.find(name);
      if (it == workers_.end() || it->second.pid != pid || it->second.state != "starting") continue;
      it->second.state = "healthy";
      it->second.healthy_since = Clock::now();
      it->second.last_error.clear();
    }
  }
}

}  // namespace spillway::gpu
