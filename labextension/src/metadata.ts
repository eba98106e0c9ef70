/**
 * Kernel metadata updates into live notebook cells (`jupyter_flink/recording/comm.py`).
 *
 * The kernel opens a comm with target `jupyter_flink.metadata` for every update, with
 * `{version: 2, notebook_path, cells: {<cell id>: flink, ...}}` as the comm_open data, and
 * closes it at once (version 1 carried one cell as `cell_id` and `flink`). Each `flink` is
 * stored as the `flink` metadata key of the cell with that id, in the notebook whose kernel
 * sent it. JupyterLab 4 and Notebook 7 share the notebook tracker, so this serves both.
 *
 * Without nagging: when the notebook had no unsaved changes before an update arrived, it is
 * saved right after (the recorded paths reach the file and closing the tab asks nothing);
 * when the user has unsaved changes of their own, their next save carries the update. The
 * kernel's refreshes of our status outputs and live tables do not count as changes either.
 *
 * The other way, it tells the kernel where its notebook is (comm target
 * `jupyter_flink.notebook`, `{path}`, kept open) when it connects, and sends the new path on
 * that comm whenever the notebook is renamed or moved, so that the kernel's journal follows.
 */
import { ICellModel } from '@jupyterlab/cells';
import { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import { IObservableList } from '@jupyterlab/observables';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { JSONExt, JSONObject, PromiseDelegate } from '@lumino/coreutils';

import { JOB_MIME, TABLE_MIME } from './jobs';

/** Comm target name and protocol version; keep in step with `recording/comm.py`. */
const TARGET_NAME = 'jupyter_flink.metadata';
const PROTOCOL_VERSION = 2;
const NOTEBOOK_TARGET_NAME = 'jupyter_flink.notebook';

/** The `{cell id: flink}` an update carries, of either protocol version (null: unusable). */
function cellsOf(data: JSONObject): JSONObject | null {
  const { version, cell_id: cellId, flink, cells } = data;
  if (version !== 1 && version !== PROTOCOL_VERSION) {
    console.warn(`jupyter-flink: ignoring an update of protocol version ${version}`);
    return null;
  }
  if (version === 1 && typeof cellId === 'string' && JSONExt.isObject(flink ?? null)) {
    return { [cellId]: flink };
  }
  if (version === PROTOCOL_VERSION && JSONExt.isObject(cells ?? null)) {
    return cells as JSONObject;
  }
  console.warn('jupyter-flink: ignoring a malformed update', data);
  return null;
}

/**
 * Store an update in the notebook model; return whether a cell changed.
 *
 * Only the `flink` key is written, and only when its value differs, so a repeated
 * update does not mark the notebook dirty.
 */
function applyUpdate(model: INotebookModel, data: JSONObject): boolean {
  const cells = cellsOf(data);
  if (cells === null) {
    return false;
  }
  let changed = false;
  for (const cell of model.cells) {
    const flink = cells[cell.sharedModel.getId()];
    if (flink === undefined || !JSONExt.isObject(flink)) {
      continue;
    }
    const current = cell.getMetadata('flink');
    const next = keepRecorded(current, flink as JSONObject);
    if (current === undefined || !JSONExt.deepEqual(current, next)) {
      cell.setMetadata('flink', next);
      changed = true;
    }
  }
  return changed;
}

/**
 * The kernel's record, except that a path it does not know (null) never erases one the cell
 * has for itself: the kernel adopts the cell's record, but a message may cross that.
 */
function keepRecorded(current: unknown, incoming: JSONObject): JSONObject {
  if (!JSONExt.isObject((current ?? null) as JSONObject | null)) {
    return incoming;
  }
  const mine = current as JSONObject;
  if (mine.cell_id !== undefined && mine.cell_id !== incoming.cell_id) {
    return incoming;
  }
  const next: JSONObject = { ...incoming };
  for (const key of ['latest_checkpoint_path', 'savepoint_path']) {
    if (next[key] === null && typeof mine[key] === 'string') {
      next[key] = mine[key];
    }
  }
  return next;
}

/**
 * Whether a cell change is the kernel refreshing one of our outputs in place (a status
 * output or live table: `update_display_data`), which is nobody's unsaved work: our outputs
 * show the live state from the kernel whatever the file holds.
 */
function isOurRefresh(change: object): boolean {
  const fields = Object.entries(change).filter(([, value]) => value !== undefined);
  if (fields.length !== 1 || fields[0][0] !== 'outputsChange') {
    return false;
  }
  let deleted = 0;
  let inserted = 0;
  for (const step of fields[0][1] as { delete?: number; insert?: unknown[] }[]) {
    deleted += step.delete ?? 0;
    for (const item of step.insert ?? []) {
      const output = (
        typeof (item as { toJSON?: unknown })?.toJSON === 'function'
          ? (item as { toJSON: () => unknown }).toJSON()
          : item
      ) as { data?: JSONObject } | null;
      const data = output?.data ?? {};
      if (!(JOB_MIME in data) && !(TABLE_MIME in data)) {
        return false;
      }
      inserted += 1;
    }
  }
  return inserted > 0 && inserted === deleted;
}

/**
 * Whether this page is the one that saves a notebook's updates. Every page showing the
 * notebook (a second tab) gets the same updates; if each saved them, each save would find the
 * file changed by the other's and ask the user to overwrite or revert. One page per notebook
 * and browser holds a Web Lock named after its path and saves; the others wait for it to
 * close. Without Web Locks (a page not served from a secure origin), every page saves.
 */
class SaverLock {
  constructor(path: string) {
    this.follow(path);
  }

  get leads(): boolean {
    return this._leads;
  }

  /** Ask for the lock of ``path`` (the notebook was opened, renamed or moved). */
  follow(path: string): void {
    this.release();
    const locks = (navigator as Navigator & { locks?: LockManager }).locks;
    if (!locks) {
      this._leads = true;
      return;
    }
    const held = new PromiseDelegate<void>();
    this._held = held;
    void locks
      .request(`jupyter-flink:save:${path}`, () => {
        if (this._held !== held) {
          return undefined; // given up while waiting: hand it on at once
        }
        this._leads = true;
        return held.promise;
      })
      .catch(error => console.warn('jupyter-flink: no save lock', error));
  }

  release(): void {
    this._leads = false;
    this._held?.resolve();
    this._held = null;
  }

  private _leads = false;
  private _held: PromiseDelegate<void> | null = null;
}

/**
 * Saves a notebook after a metadata update that arrived while the user had nothing unsaved,
 * and keeps the kernel's refreshes of our outputs from marking it as changed. Whatever else
 * changes (typing, running a cell, editing metadata, adding cells) is the user's: then the
 * update waits for the user's next save, as any change would. Of several pages showing the
 * notebook, one saves (SaverLock); the others hold the same update and count as saved.
 */
class QuietSaver {
  constructor(private readonly _context: NotebookPanel['context']) {
    this.lock = new SaverLock(_context.path);
    // Loading the notebook fills the model: count changes from when it is loaded.
    void _context.ready.then(() => {
      if (_context.isDisposed) {
        return;
      }
      const model = _context.model;
      this._userChanges = model.dirty ? 1 : 0;
      for (const cell of model.cells) {
        this._listen(cell);
      }
      model.cells.changed.connect(this._onCells, this);
      model.metadataChanged.connect(this._onUserChange, this);
      _context.saveState.connect(this._onSaveState, this);
      this._ready = true;
    });
  }

  /** Apply ``data``; save if the user had nothing unsaved. */
  apply(data: JSONObject): void {
    const clean = this._ready && this._userChanges === this._savedUserChanges;
    this._applying = true;
    let changed = false;
    try {
      changed = applyUpdate(this._context.model, data);
    } finally {
      this._applying = false;
    }
    if (!changed || !clean || this._context.isDisposed) {
      return;
    }
    // Nothing of the user's is unsaved, and the update is saved now (or by the page that
    // leads): not dirty meanwhile, or closing the tab during the save would ask to save
    this._context.model.dirty = false;
    if (this.lock.leads) {
      this._save();
    }
  }

  readonly lock: SaverLock;

  dispose(): void {
    this.lock.release();
    const model = this._context.model;
    model.cells.changed.disconnect(this._onCells, this);
    model.metadataChanged.disconnect(this._onUserChange, this);
    this._context.saveState.disconnect(this._onSaveState, this);
    for (const cell of model.cells) {
      cell.sharedModel.changed.disconnect(this._onCellChange, this);
    }
  }

  private _listen(cell: ICellModel): void {
    if (!this._listened.has(cell)) {
      this._listened.add(cell);
      cell.sharedModel.changed.connect(this._onCellChange, this);
    }
  }

  private _onCells(_: unknown, change: IObservableList.IChangedArgs<ICellModel>): void {
    change.newValues.forEach(cell => this._listen(cell));
    this._onUserChange();
  }

  private _onCellChange(_: unknown, change: object): void {
    if (this._applying) {
      return;
    }
    if (!isOurRefresh(change)) {
      this._onUserChange();
    } else if (this._userChanges === this._savedUserChanges && !this._saving) {
      this._context.model.dirty = false; // nothing of the user's is unsaved
    }
  }

  private _onUserChange(): void {
    if (!this._applying) {
      this._userChanges += 1;
    }
  }

  private _save(): void {
    if (this._saving || this._othersSaving) {
      // Never two saves at once: the second would find the file changed on disk
      this._again = true;
      return;
    }
    this._saving = true;
    this._context
      .save()
      .catch(error => {
        console.warn('jupyter-flink: saving the recorded paths failed', error);
        if (!this._context.isDisposed) {
          this._context.model.dirty = true; // the file lacks the update: the user's save
        }
      })
      .finally(() => {
        this._saving = false;
        const again = this._again;
        this._again = false;
        if (again && this._userChanges === this._savedUserChanges && !this._context.isDisposed) {
          this._save(); // updates that came during the save
        }
      });
  }

  private _onSaveState(_: unknown, state: string): void {
    // Saved by anyone: what the user had changed until the save started is in the file.
    if (state === 'started') {
      this._startedAt = this._userChanges;
      this._othersSaving = !this._saving;
      return;
    }
    if (state === 'completed') {
      this._savedUserChanges = this._startedAt;
    }
    if (this._othersSaving) {
      this._othersSaving = false;
      if (this._again && this._userChanges === this._savedUserChanges) {
        this._again = false;
        this._save(); // updates that came during the user's save
      }
    }
  }

  private _ready = false;
  private _applying = false;
  private _saving = false;
  private _othersSaving = false;
  private _again = false;
  private _userChanges = 0; // counts the user's changes
  private _savedUserChanges = 0; // the count the file has
  private _startedAt = 0;
  private readonly _listened = new WeakSet<ICellModel>();
}

/** Follow one notebook context's kernel and apply the updates it sends. */
export function watchMetadata(context: NotebookPanel['context']): void {
  const { sessionContext } = context;
  let kernel: Kernel.IKernelConnection | null = null;
  const saver = new QuietSaver(context);
  // One comm per kernel connection tells the kernel where its notebook is (its journal
  // follows the notebook); a kernel without jupyter-flink closes it, and that is all.
  let pathComm: Kernel.IComm | null = null;
  const tellPath = (): void => {
    if (!kernel || kernel.isDisposed || !kernel.handleComms) {
      return;
    }
    try {
      if (pathComm === null || pathComm.isDisposed) {
        const comm = kernel.createComm(NOTEBOOK_TARGET_NAME);
        comm.onClose = () => {
          pathComm = null;
        };
        pathComm = comm;
        comm.open({ path: context.path });
      } else {
        pathComm.send({ path: context.path });
      }
    } catch (error) {
      console.warn('jupyter-flink: could not tell the kernel the notebook path', error);
    }
  };

  const onCommOpen = (
    comm: Kernel.IComm,
    msg: KernelMessage.ICommOpenMsg
  ): void => {
    saver.apply(msg.content.data);
  };
  // Only one connection per kernel and page handles comms (a console opened on the
  // notebook's kernel may have won that race); the others still see every iopub message.
  const onIOPub = (
    _: Kernel.IKernelConnection,
    msg: KernelMessage.IIOPubMessage
  ): void => {
    if (
      KernelMessage.isCommOpenMsg(msg) &&
      msg.content.target_name === TARGET_NAME
    ) {
      saver.apply(msg.content.data);
    }
  };
  const detach = (): void => {
    pathComm = null;
    if (kernel && !kernel.isDisposed) {
      kernel.removeCommTarget(TARGET_NAME, onCommOpen);
      kernel.iopubMessage.disconnect(onIOPub);
    }
    kernel = null;
  };
  const attach = (): void => {
    const next = sessionContext.session?.kernel ?? null;
    if (next === kernel) {
      return;
    }
    detach();
    kernel = next;
    if (kernel?.handleComms) {
      kernel.registerCommTarget(TARGET_NAME, onCommOpen);
      tellPath();
    } else if (kernel) {
      kernel.iopubMessage.connect(onIOPub);
    }
  };
  const moved = (): void => {
    saver.lock.follow(context.path);
    tellPath();
  };

  sessionContext.kernelChanged.connect(attach);
  context.pathChanged.connect(moved);
  attach();
  context.disposed.connect(() => {
    sessionContext.kernelChanged.disconnect(attach);
    context.pathChanged.disconnect(moved);
    detach();
    saver.dispose();
  });
}

