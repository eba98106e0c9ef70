/**
 * jupyter-flink frontend for JupyterLab 4 and Notebook 7:
 *
 * - `metadata.ts`: the kernel's recorded paths into live cell metadata (and the file, when
 *   the notebook had nothing else unsaved);
 * - `renderer.ts`: job status outputs and live tables that stay live (one jobs comm per
 *   notebook kernel, `jobs.ts`), with health charts (`sparkline.ts`);
 * - `panel.ts`: a side panel with the jobs of the current notebook's kernel.
 *
 * The logic stays in the kernel: these render what it sends and send back what the user asks.
 */
import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { INotebookModel, INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { IDisposable } from '@lumino/disposable';

import { notebookJobs } from './jobs';
import { watchMetadata } from './metadata';
import { JobsPanel } from './panel';
import { rendererFactories } from './renderer';

const metadataPlugin: JupyterFrontEndPlugin<void> = {
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
        watchMetadata(panel.context);
      }
    });
  }
};

/** Gives each notebook renderers of our MIME types that follow its kernel. */
class LiveOutputs implements DocumentRegistry.IWidgetExtension<NotebookPanel, INotebookModel> {
  createNew(panel: NotebookPanel): IDisposable {
    const jobs = notebookJobs(panel.sessionContext, panel.context.model);
    for (const factory of rendererFactories(jobs)) {
      panel.content.rendermime.addFactory(factory, factory.defaultRank);
    }
    return { isDisposed: false, dispose: () => undefined };
  }
}

const outputsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-flink:outputs',
  description: 'Renders Flink job outputs and live tables that stay live, with health charts.',
  autoStart: true,
  optional: [IRenderMimeRegistry],
  activate: (app: JupyterFrontEnd, rendermime: IRenderMimeRegistry | null): void => {
    // Everywhere else (e.g. an output opened in a view of its own): the saved facts
    for (const factory of rendererFactories(null)) {
      rendermime?.addFactory(factory, factory.defaultRank);
    }
    app.docRegistry.addWidgetExtension('Notebook', new LiveOutputs());
  }
};

const panelPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-flink:jobs-panel',
  description: 'A side panel with the Flink jobs of the current notebook.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILabShell],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker): void => {
    const panel = new JobsPanel(tracker);
    app.shell.add(panel, 'right', { rank: 900 });
  }
};

export default [metadataPlugin, outputsPlugin, panelPlugin];
