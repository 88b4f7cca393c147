// The GPU path end to end without a GPU: a declared A100 with MIG
// instances, a `spillwayd sim` worker launched per instance (real
// processes on real loopback ports), each priority class routed only to
// its instances and long requests confined, the GPU view and metrics, a
// killed worker restarted, workers stopped when the config drops them,
// the planner over the engine's inventory, a failed apply putting workers
// back, dropped workers serving their requests out, the engine on the fake
// NVML (view, metrics, the alert's figure) and auto's fallback to the
// declared GPUs, and config errors with paths.
// The launcher alone: a worker that keeps crashing is restarted with
// back-off; one that never answers its health path is reported.
#pragma once

#include <QObject>

class GpuEngineTest : public QObject {
  Q_OBJECT
 private slots:
  void workersServeTheirInstancesAndClassesStayOnTheirSlices();
  void aFailedApplyPutsTheRunningWorkersBack();
  void droppedWorkersFinishTheirRequestsFirst();
  void nvmlInventoryReachesTheViewAndMetrics();
  void newMigInstancesGetWorkersWithoutAnApply();
  void launcherRestartsACrashingWorkerWithBackoff();
  void launcherReportsAWorkerThatNeverBecomesHealthy();
  void gpuConfigErrorsNameTheField();
};
