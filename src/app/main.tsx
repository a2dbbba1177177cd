// Page entry: mounts the React app, starts the worker and loads the stored history.
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { startPlayground } from './store.ts';
import { startHistory } from './history-store.ts';
import './style.css';

startPlayground();
startHistory();
createRoot(document.getElementById('root')!).render(<StrictMode><App /></StrictMode>);
