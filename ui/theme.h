// Light and dark themes. "System" keeps the platform's own style and
// palette (which follow the desktop's colour scheme); "Light" and "Dark"
// switch to Fusion with an explicit palette. The choice is kept in
// QSettings ("ui/theme"). Charts follow the palette (OverviewPage).
#pragma once

#include <QString>

namespace spillway::ui {

enum class Theme { kSystem, kLight, kDark };

void applyTheme(Theme theme);
Theme savedTheme();
void saveTheme(Theme theme);
QString themeName(Theme theme);
// True when the application palette is dark (window colour lightness < 128).
bool paletteIsDark();

}  // namespace spillway::ui
