/**
 * The jobs comm, frontend side: one comm per notebook's kernel connection, through which the
 * outputs and the jobs panel of this page subscribe to the kernel's jobs
 * (`jupyter_flink/display/job_comm.py` has the protocol). The kernel answers a subscription
 * at once with the current state and then pushes changes, so outputs stay live after a page
 * reload, in a second tab, or when the notebook is opened again.
 *
 * `NotebookJobs` follows a notebook's session: its kernel may change, restart or die; the
 * renderers and the panel ask it what is known and listen to `changed`.
 */
import { ISessionContext } from '@jupyterlab/apputils';
import { INotebookModel } from '@jupyterlab/notebook';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { JSONObject, PromiseDelegate } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

export const JOBS_TARGET = 'jupyter_flink.jobs';
export const JOB_MIME = 'application/vnd.jupyter-flink.job+json';
export const TABLE_MIME = 'application/vnd.jupyter-flink.table+json';
const PROTOCOL_VERSION = 1;
// The kernel drops a subscription not renewed for 150 s (display/job_comm.py: LEASE_S)
const RENEW_EVERY_MS = 30000;

export interface IHealthLatest {
  at_ms: number;
  in: number | null;
  out: number | null;
  busy: number | null;
  backpressured: number | null;
  watermark_lag_ms: number | null;
}

export interface IHealth {
  latest: IHealthLatest | null;
  busiest: string | null;
  series?: {
    t: number[];
    in: (number | null)[];
    out: (number | null)[];
    busy: (number | null)[];
    backpressured: (number | null)[];
    watermark_lag_ms: (number | null)[];
  };
  checkpoints?: { t: number[]; duration_ms: number[]; size: number[] };
}

/** A job's facts as the kernel saw them (`display/job_facts.py`). */
export interface IJobPayload {
  version: number;
  kernel: string;
  cluster: string;
  job_id: string;
  name: string;
  cell_id: string | null;
  state: string;
  state_detail: string | null;
  batch: boolean;
  start_time_ms: number | null;
  end_time_ms: number | null;
  observed_ms: number;
  checkpoints: {
    completed: number;
    failed: number;
    in_progress: number;
    last_ms: number | null;
    duration_ms: number | null;
    size: number | null;
    failure: string | null;
    failure_ms: number | null;
  };
  latest_checkpoint_path: string | null;
  savepoint_path: string | null;
  savepoint_dir: string | null;
  restored_from: string | null;
  restore_reason: string | null;
  auto_savepoint_s: number | null;
  restarts: number;
  failure: string | null;
  notice: string | null;
  recording_problem: string | null;
  health: IHealth | null;
}

/** What a cell's metadata records (`recording/record.py`), as far as outputs care. */
export interface ICellRecord {
  job_id?: string;
  savepoint_path?: string | null;
  latest_checkpoint_path?: string | null;
  updated?: string;
}

/** A live table's latest rendering. */
export interface ITablePayload {
  job_id: string;
  html: string;
  final: boolean;
  observed_ms: number;
}

/** Whether the kernel can tell us anything now. */
export type LinkState =
  | 'no-kernel' // no kernel, or it died
  | 'restarting'
  | 'connecting' // subscribed, no answer yet
  | 'live'
  | 'unavailable'; // another connection of this page handles the kernel's comms

export const TERMINAL_STATES = new Set([
  'FINISHED',
  'CANCELED',
  'FAILED',
  'SUSPENDED',
  'LOST'
]);

const MAX_SAMPLES = 61; // five minutes of samples every 5 s (jobs/health.py)
const MAX_CHECKPOINTS = 60;

/**
 * A pushed payload carries the latest health sample only (the answer to a subscription has
 * the charts' points): append it, and the latest checkpoint, to the charts we have.
 */
export function withCharts(next: IJobPayload, previous: IJobPayload | null): IJobPayload {
  const health = next.health;
  const before = previous?.job_id === next.job_id ? previous.health : null;
  if (!health || health.series) {
    return next;
  }
  // No points yet (the job had no sample when the frontend subscribed): start the charts
  const known = before?.series ?? {
    t: [],
    in: [],
    out: [],
    busy: [],
    backpressured: [],
    watermark_lag_ms: []
  };
  const series = {
    t: [...known.t],
    in: [...known.in],
    out: [...known.out],
    busy: [...known.busy],
    backpressured: [...known.backpressured],
    watermark_lag_ms: [...known.watermark_lag_ms]
  };
  const latest = health.latest;
  if (latest && latest.at_ms > (series.t[series.t.length - 1] ?? 0)) {
    series.t.push(latest.at_ms);
    series.in.push(latest.in);
    series.out.push(latest.out);
    series.busy.push(latest.busy);
    series.backpressured.push(latest.backpressured);
    series.watermark_lag_ms.push(latest.watermark_lag_ms);
    const extra = series.t.length - MAX_SAMPLES;
    if (extra > 0) {
      for (const values of Object.values(series)) {
        values.splice(0, extra);
      }
    }
  }
  const checkpoints = {
    t: [...(before?.checkpoints?.t ?? [])],
    duration_ms: [...(before?.checkpoints?.duration_ms ?? [])],
    size: [...(before?.checkpoints?.size ?? [])]
  };
  const c = next.checkpoints;
  if (
    c.last_ms !== null &&
    c.duration_ms !== null &&
    c.last_ms > (checkpoints.t[checkpoints.t.length - 1] ?? 0)
  ) {
    checkpoints.t.push(c.last_ms);
    checkpoints.duration_ms.push(c.duration_ms);
    checkpoints.size.push(c.size ?? 0);
    const extra = checkpoints.t.length - MAX_CHECKPOINTS;
    if (extra > 0) {
      for (const values of Object.values(checkpoints)) {
        values.splice(0, extra);
      }
    }
  }
  return { ...next, health: { ...health, series, checkpoints } };
}

/** The subscription of one kernel connection. */
class JobsLink implements IDisposable {
  constructor(
    readonly kernel: Kernel.IKernelConnection,
    private readonly _wanted: () => JSONObject,
    private readonly _changed: (ids: Set<string> | null) => void
  ) {
    kernel.statusChanged.connect(this._onStatus, this);
    window.addEventListener('pagehide', this._onPageHide);
  }

  state: LinkState = 'connecting';
  instance: string | null = null;
  cluster: string | null = null;
  readonly jobs = new Map<string, IJobPayload | null>();
  readonly tables = new Map<string, ITablePayload | null>();

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this.kernel.statusChanged.disconnect(this._onStatus, this);
    window.removeEventListener('pagehide', this._onPageHide);
    this._closeComm();
  }

  /** Tell the kernel what this page shows now (opening the comm if need be). */
  update(): void {
    if (this._disposed || this.state === 'restarting') {
      return;
    }
    const status = this.kernel.status;
    if (status === 'dead' || this.kernel.isDisposed) {
      this._set('no-kernel');
      return;
    }
    if (!this.kernel.handleComms) {
      this._set('unavailable');
      return;
    }
    const interest = this._wanted();
    const none =
      !(interest.jobs as string[]).length &&
      !(interest.tables as string[]).length &&
      !interest.list;
    if (none && this._comm === null) {
      return; // nothing shown: no comm
    }
    const wanted = { version: PROTOCOL_VERSION, ...interest };
    try {
      if (this._comm === null) {
        this._comm = this.kernel.createComm(JOBS_TARGET);
        const comm = this._comm;
        comm.onMsg = msg => this._onMessage(msg);
        comm.onClose = () => {
          if (this._comm === comm) {
            this._comm = null;
            window.clearInterval(this._renewing);
          }
        };
        comm.open(wanted);
        this._renewing = window.setInterval(() => {
          if (this._comm === comm && !comm.isDisposed) {
            comm.send({ version: PROTOCOL_VERSION, alive: true });
          }
        }, RENEW_EVERY_MS);
      } else {
        this._comm.send(wanted);
      }
    } catch (error) {
      console.warn('jupyter-flink: could not subscribe to the kernel jobs', error);
      this._comm = null;
    }
  }

  request(action: string, jobId: string): Promise<{ ok: boolean; message: string }> {
    const requestId = `${Date.now()}-${Math.random().toString(16).slice(2)}`;
    const reply = new PromiseDelegate<{ ok: boolean; message: string }>();
    if (this._comm === null) {
      this.update();
    }
    if (this._comm === null) {
      reply.resolve({ ok: false, message: 'The kernel is not running.' });
      return reply.promise;
    }
    this._pending.set(requestId, reply);
    this._comm.send({ request: action, job_id: jobId, request_id: requestId });
    return reply.promise;
  }

  private _onMessage(msg: KernelMessage.ICommMsgMsg): void {
    const data = msg.content.data as JSONObject;
    if (typeof data.reply === 'string') {
      const reply = this._pending.get(data.reply);
      this._pending.delete(data.reply);
      reply?.resolve({ ok: data.ok === true, message: String(data.message ?? '') });
      return;
    }
    const ids = new Set<string>();
    const kernel = data.kernel as JSONObject | undefined;
    if (kernel) {
      // An answer: the state of everything asked for
      this.instance = String(kernel.instance ?? '');
      this.cluster = String(kernel.cluster ?? '');
      this._set('live');
    }
    const jobs = (data.jobs ?? {}) as JSONObject;
    for (const [id, payload] of Object.entries(jobs)) {
      const next = (payload as unknown as IJobPayload | null) ?? null;
      this.jobs.set(id, next ? withCharts(next, this.jobs.get(id) ?? null) : null);
      ids.add(id);
    }
    const tables = (data.tables ?? {}) as JSONObject;
    for (const [id, payload] of Object.entries(tables)) {
      this.tables.set(id, (payload as unknown as ITablePayload | null) ?? null);
      ids.add(id);
    }
    this._changed(kernel ? null : ids);
  }

  private _onStatus(_: Kernel.IKernelConnection, status: KernelMessage.Status): void {
    if (status === 'restarting' || status === 'autorestarting') {
      this._closeComm();
      this._set('restarting');
    } else if (status === 'dead') {
      this._closeComm();
      this._set('no-kernel');
    } else if (
      this.state === 'restarting' &&
      (status === 'idle' || status === 'busy')
    ) {
      // The new kernel process is up: what does it know?
      this._set('connecting');
      this.update();
    }
  }

  // A page going away tells the kernel, if it still can (the lease covers it otherwise)
  private readonly _onPageHide = (): void => this._closeComm();

  private _closeComm(): void {
    const comm = this._comm;
    this._comm = null;
    window.clearInterval(this._renewing);
    this.jobs.clear();
    this.tables.clear();
    this.instance = null;
    for (const reply of this._pending.values()) {
      reply.resolve({ ok: false, message: 'The kernel went away.' });
    }
    this._pending.clear();
    if (comm && !comm.isDisposed) {
      try {
        comm.close();
      } catch {
        // the kernel is gone already
      }
    }
  }

  private _set(state: LinkState): void {
    if (this.state !== state) {
      this.state = state;
      this._changed(null);
    }
  }

  private _comm: Kernel.IComm | null = null;
  private _renewing: number | undefined = undefined;
  private _disposed = false;
  private _pending = new Map<string, PromiseDelegate<{ ok: boolean; message: string }>>();
}

/**
 * What one notebook's outputs and panel know of its kernel's jobs; follows the session's
 * kernel. Subscriptions are counted per id, and sent to the kernel together, at most once
 * per animation frame.
 */
export class NotebookJobs implements IDisposable {
  constructor(
    readonly sessionContext: ISessionContext,
    private readonly _model: INotebookModel | null = null
  ) {
    sessionContext.kernelChanged.connect(this._onKernel, this);
    this._onKernel();
  }

  /** What is recorded in the metadata of cell ``cellId`` (`cell.metadata.flink`). */
  record(cellId: string | null): ICellRecord | null {
    if (!cellId || !this._model) {
      return null;
    }
    for (const cell of this._model.cells) {
      if (cell.sharedModel.getId() === cellId) {
        const flink = cell.getMetadata('flink');
        return flink && typeof flink === 'object' ? (flink as ICellRecord) : null;
      }
    }
    return null;
  }

  /** Emits the ids whose state changed, or null when anything may have. */
  get changed(): ISignal<this, Set<string> | null> {
    return this._changedSignal;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  get state(): LinkState {
    return this._link?.state ?? 'no-kernel';
  }

  /** The id of this kernel process (a restart gives a new one); null until it answers. */
  get instance(): string | null {
    return this._link?.instance ?? null;
  }

  get kernelId(): string | null {
    return this._link?.kernel.id ?? null;
  }

  /** undefined: no answer (yet); null: the kernel does not know this job. */
  job(id: string): IJobPayload | null | undefined {
    return this._link?.state === 'live' ? this._link.jobs.get(id) : undefined;
  }

  table(id: string): ITablePayload | null | undefined {
    return this._link?.state === 'live' ? this._link.tables.get(id) : undefined;
  }

  /** Every job the kernel told about (the panel lists them). */
  allJobs(): IJobPayload[] {
    if (this._link?.state !== 'live') {
      return [];
    }
    const jobs = new Map<string, IJobPayload>();
    for (const payload of this._link.jobs.values()) {
      if (payload) {
        jobs.set(payload.job_id, payload);
      }
    }
    return [...jobs.values()];
  }

  watchJob(id: string): IDisposable {
    return this._watch(this._jobs, id);
  }

  watchTable(id: string): IDisposable {
    return this._watch(this._tables, id);
  }

  watchList(): IDisposable {
    return this._watch(this._list, '*');
  }

  request(action: string, jobId: string): Promise<{ ok: boolean; message: string }> {
    if (!this._link) {
      return Promise.resolve({ ok: false, message: 'The kernel is not running.' });
    }
    return this._link.request(action, jobId);
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this.sessionContext.kernelChanged.disconnect(this._onKernel, this);
    this._link?.dispose();
    this._link = null;
    Signal.clearData(this);
  }

  private _watch(counts: Map<string, number>, id: string): IDisposable {
    counts.set(id, (counts.get(id) ?? 0) + 1);
    this._schedule();
    let disposed = false;
    return {
      get isDisposed() {
        return disposed;
      },
      dispose: () => {
        if (disposed) {
          return;
        }
        disposed = true;
        const left = (counts.get(id) ?? 1) - 1;
        if (left > 0) {
          counts.set(id, left);
        } else {
          counts.delete(id);
        }
        this._schedule();
      }
    };
  }

  private _wanted(): JSONObject {
    return {
      jobs: [...this._jobs.keys()],
      tables: [...this._tables.keys()],
      list: this._list.size > 0
    };
  }

  /** Send the subscription once the renderers of this frame have registered. */
  private _schedule(): void {
    if (this._scheduled || this._disposed) {
      return;
    }
    this._scheduled = true;
    setTimeout(() => {
      this._scheduled = false;
      const wanted = JSON.stringify(this._wanted());
      if (this._link && (wanted !== this._sent || this._link.state !== 'live')) {
        this._sent = wanted;
        this._link.update();
      }
    }, 0);
  }

  private _onKernel(): void {
    const kernel = this.sessionContext.session?.kernel ?? null;
    if (kernel === (this._link?.kernel ?? null)) {
      return;
    }
    this._link?.dispose();
    this._link = kernel
      ? new JobsLink(kernel, () => this._wanted(), ids => this._changedSignal.emit(ids))
      : null;
    this._sent = '';
    this._changedSignal.emit(null);
    this._schedule();
  }

  private _link: JobsLink | null = null;
  private _jobs = new Map<string, number>();
  private _tables = new Map<string, number>();
  private _list = new Map<string, number>();
  private _scheduled = false;
  private _sent = '';
  private _disposed = false;
  private _changedSignal = new Signal<this, Set<string> | null>(this);
}

const byContext = new WeakMap<ISessionContext, NotebookJobs>();

/** The NotebookJobs of a notebook's session (one per session context and page);
 * ``model``: the notebook, whose cells' records the outputs may read. */
export function notebookJobs(
  sessionContext: ISessionContext,
  model: INotebookModel | null = null
): NotebookJobs {
  let jobs = byContext.get(sessionContext);
  if (!jobs || jobs.isDisposed) {
    jobs = new NotebookJobs(sessionContext, model);
    byContext.set(sessionContext, jobs);
    sessionContext.disposed.connect(() => jobs?.dispose());
  }
  return jobs;
}
