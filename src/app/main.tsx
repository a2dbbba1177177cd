// Page entry: mounts the React app and starts the worker.
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { startPlayground } from './store.ts';
import './style.css';

startPlayground();
createRoot(document.getElementById('root')!).render(<StrictMode><App /></StrictMode>);
