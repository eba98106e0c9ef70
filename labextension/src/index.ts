/**
 * jupyter-flink frontend: applies the kernel's Flink metadata updates to live notebook cells.
 *
 * The kernel opens a comm with target `jupyter_flink.metadata` for every update, with
 * `{version: 2, notebook_path, cells: {<cell id>: flink, ...}}` as the comm_open data, and
 * closes it at once (see `jupyter_flink/recording/comm.py`; version 1 carried one cell as
 * `cell_id` and `flink`). This plugin stores each `flink` as the `flink` metadata key of the
 * cell with that id, in the notebook whose kernel sent it. JupyterLab 4 and Notebook 7 share
 * the notebook tracker, so one plugin serves both.
 *
 * The other way, it tells the kernel where its notebook is (comm target
 * `jupyter_flink.notebook`, `{path}`) when it connects and whenever the notebook is renamed
 * or moved, so that the kernel's journal follows the notebook.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  INotebookModel,
  INotebookTracker,
  NotebookPanel
} from '@jupyterlab/notebook';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { JSONExt, JSONObject } from '@lumino/coreutils';

/** Comm target name and protocol version; keep in step with `jupyter_flink/comm.py`. */
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


/** Follow one notebook context's kernel and apply the updates it sends. */
function watch(context: NotebookPanel['context']): void {
  const { sessionContext } = context;
  let kernel: Kernel.IKernelConnection | null = null;
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
    applyUpdate(context.model, msg.content.data);
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
      applyUpdate(context.model, msg.content.data);
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
  const moved = (): void => tellPath();

  sessionContext.kernelChanged.connect(attach);
  context.pathChanged.connect(moved);
  attach();
  context.disposed.connect(() => {
    sessionContext.kernelChanged.disconnect(attach);
    context.pathChanged.disconnect(moved);
    detach();
  });
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-flink:plugin',
  description:
    'Keeps the Flink checkpoint and savepoint paths the kernel reports in cell metadata.',
  autoStart: true,
  requires: [INotebookTracker],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker): void => {
    const watched = new WeakSet<NotebookPanel['context']>();
    tracker.widgetAdded.connect((_, panel) => {
      // Several views of one notebook share a context (and its kernel connection).
      if (!watched.has(panel.context)) {
        watched.add(panel.context);
        watch(panel.context);
      }
    });
  }
};

export default plugin;
